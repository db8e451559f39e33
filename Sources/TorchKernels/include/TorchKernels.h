// TorchKernels exports TorchBridge.h's functions as dihk_*, found with dlsym by TorchBridge; nothing
// includes this header but the target itself.
#include "TorchBridge.h"
