// The hub's own shared libraries that the binary opens at run time instead of linking (libTorchKernels.so:
// libtorch; libFeatureKernels.so: OpenCV), so that a process loads them only when, or while, it needs them.
#ifndef KERNEL_LIBRARIES_H
#define KERNEL_LIBRARIES_H

/// Opens `file` (e.g. "libTorchKernels.so") from the path in the environment variable `variable` when set,
/// else beside the executable (where `swift build` puts it), else through the dynamic loader's own search;
/// RTLD_NOW | RTLD_LOCAL. NULL on failure, with dlerror() saying why.
void *dih_open_kernel_library(const char *variable, const char *file);

#endif
