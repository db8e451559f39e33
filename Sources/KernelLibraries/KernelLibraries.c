#include "KernelLibraries.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *dih_open_kernel_library(const char *variable, const char *file) {
    const char *named = getenv(variable);
    if (named && *named) return dlopen(named, RTLD_NOW | RTLD_LOCAL);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dirname(exe), file);
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (lib) return lib;
    }
    return dlopen(file, RTLD_NOW | RTLD_LOCAL);
}
