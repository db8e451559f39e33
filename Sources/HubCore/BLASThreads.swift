#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS, which Debian's OpenCV (and libtorch) reach through `libblas.so.3`, starts a worker thread per
/// core when it is loaded, and each spins on `sched_yield` for about 2^28 cycles (0.1 s) before it sleeps:
/// measured with `perf` on `imagehub ingest` of 15 phone photos, 9% of the whole process's CPU, none of it
/// work (nothing in ingest or serve calls BLAS until a training job). The threads are stopped first thing
/// in `main`; OpenBLAS starts them again by itself when a multi-threaded BLAS call comes.
public enum BLASThreads {
    public static func stopIdle() {
        guard let symbol = dlsym(nil, "blas_thread_shutdown_") else { return }
        typealias Shutdown = @convention(c) () -> Int32
        _ = unsafeBitCast(symbol, to: Shutdown.self)()
    }
}
