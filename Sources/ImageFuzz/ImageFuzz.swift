import Foundation
import Imaging

/// What ingest does with untrusted bytes before any verdict — sniff the format, read the header, refuse
/// sizes over the limits, decode strictly (and leniently where only a warning stopped it) — for one input.
/// `scripts/fuzz.sh` builds this with libFuzzer and AddressSanitizer (`-D FUZZING`); built plainly it
/// replays files given on the command line (a finding, or a corpus), one after another.
enum Examine {
    static let started: Void = Vips.start()
    static let maxMegapixels = 100.0, maxSide = 20_000

    static func run(_ bytes: Data) {
        _ = started
        guard let format = ImageFormat.sniff(bytes.prefix(ImageFormat.sniffLength)),
              [.jpeg, .png, .webp, .heif].contains(format) else { return }
        guard let header = try? Image.header(of: bytes) else { return }
        guard Double(header.width) * Double(header.height) <= maxMegapixels * 1_000_000,
              max(header.width, header.height) <= maxSide, min(header.width, header.height) >= 1 else { return }
        do {
            _ = try Image.decode(bytes, header: header, longSide: 1024, strictness: .warning) { try $0.autoRotated().sRGB() }
        } catch {
            _ = try? Image.decode(bytes, header: header, longSide: 1024, strictness: .error) { try $0.autoRotated().sRGB() }
        }
    }
}

#if FUZZING
/// libFuzzer's driver (linked from the toolchain's `libclang_rt.fuzzer_no_main`).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            guard let data, size > 0 else { return 0 }
            Examine.run(Data(bytes: data, count: size))
            return 0
        })
    }
}
#else
@main
struct Replay {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            Examine.run(try Data(contentsOf: URL(fileURLWithPath: path)))
            print("ok \(path)")
        }
    }
}
#endif
