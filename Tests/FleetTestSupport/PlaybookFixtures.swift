import Foundation

/// Playbook pieces many tests share: the node token fetched on the first server, and written out on
/// the hosts that need it. Tests join them with their own `[[steps]]` tables.
extension Fixtures {
    /// Where K3s keeps a server's node token.
    public static let nodeTokenPath = "/var/lib/rancher/k3s/server/node-token"

    /// A node token in K3s's format, `K10<CA hash>::server:<password>`.
    public static let nodeToken = "K10c0ffee0123456789abcdef::server:9f8e7d6c5b4a39281706"

    /// A `[[steps]]` table named `token`: the first server's node token read into the value `token`.
    public static let fetchTokenStep = """
        [[steps]]
        name = "token"
        action = "fetch_secret"
        target = "first-server"
        path = "\(nodeTokenPath)"
        secret = "token"
        """

    /// A `[[steps]]` table that waits for the value `token` and uploads it to `dest` (mode 0600) on
    /// `target`, a TOML value (`"agents"`, `["a1"]`).
    public static func tokenUploadStep(name: String = "token-file", target: String = "\"agents\"",
                                       dest: String = "/etc/rancher/k3s/token") -> String {
        """
        [[steps]]
        name = "\(name)"
        action = "upload"
        target = \(target)
        needs = ["token"]
        secret = "token"
        dest = "\(dest)"
        mode = "0600"
        """
    }
}
