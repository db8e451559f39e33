// FeatureKernels exports FeatureMatch.h's functions as dihf_*, found with dlsym by FeatureMatch; nothing
// includes this header but the target itself.
#include "FeatureMatch.h"
