import FleetCore
import Foundation

/// Runs a local program for a test, through FleetCore's ``LocalCommand`` (posix_spawn and waitpid,
/// no pipes or run loop, so it cannot hang on a child that has already exited).
public enum Subprocess {
    public typealias Result = LocalCommand.Result

    /// `args[0]` is a path. `directory`: the child's working directory (default: this process's).
    public static func run(_ args: [String], stdin: Data = Data(), directory: String? = nil) -> Result {
        LocalCommand.run(args, stdin: stdin, directory: directory)
    }
}
