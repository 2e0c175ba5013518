import FleetCore
import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

final class TemplateTests: XCTestCase {
    /// A template checked against the K3s playbooks' variables.
    func k3sTemplate(_ source: String) throws -> Template {
        try Template(source, known: K3sActions.templateVariables)
    }

    /// Runs `/bin/sh -c script` locally and returns its stdout bytes.
    func shellOutput(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws -> Data {
        let r = LocalCommand.run(["/bin/sh", "-c", script])
        XCTAssertEqual(r.status, 0, "sh -c \(script)", file: file, line: line)
        return r.stdout
    }

    func testShellRenderingQuotesEveryValueExactly() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let canary = dir.file("executed")
        let template = try k3sTemplate("printf %s {{ host.name }}")
        let values = [
            "plain-word",
            "it's",
            "''",
            "two words",
            "  leading and trailing  ",
            "$(touch \(canary))",
            "`touch \(canary)`",
            "${HOME}",
            "$HOME",
            "line one\nline two\n",
            "",
            "\"double\" quotes",
            "back\\slash\\",
            "semi; touch \(canary)",
            "a && touch \(canary) || b",
            "*",
            "~",
            "-n",
            "tab\there",
            "héllo wörld ✓",
            "!history",
            "#comment",
            "a|b>c<d&e",
        ]
        for value in values {
            let rendered = template.render(TemplateVariables(values: ["host.name": value]), .shell)
            let bytes = try shellOutput(rendered)
            XCTAssertEqual(bytes, Data(value.utf8), "value \(value.debugDescription) rendered as \(rendered)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: canary), "a value was executed by the shell")
    }

    func testEveryVariableInACommandIsQuoted() throws {
        let template = try k3sTemplate("printf '%s|' {{ host.name }} {{host.address}} {{  cluster.name  }} x{{ host.role }}y")
        let vars = TemplateVariables(values: ["host.name": "a b", "host.address": "$(id)", "cluster.name": "", "host.role": "it's"])
        let bytes = try shellOutput(template.render(vars, .shell))
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "a b|$(id)||xit'sy|")
    }

    func testPlainRenderingDoesNotQuote() throws {
        let template = try k3sTemplate("name: {{ host.name }}, url: {{ server_url }}")
        let vars = TemplateVariables(values: ["host.name": "it's a b", "server_url": "https://[fd00::1]:6443"])
        XCTAssertEqual(template.render(vars, .plain), "name: it's a b, url: https://[fd00::1]:6443")
        XCTAssertNotEqual(template.render(vars, .shell), template.render(vars, .plain))
    }

    func testSafeValuesStayBare() {
        XCTAssertEqual(shellQuote("fd00:10::1"), "fd00:10::1")
        XCTAssertEqual(shellQuote("/etc/rancher/k3s/config.yaml"), "/etc/rancher/k3s/config.yaml")
        XCTAssertEqual(shellQuote("v1.31.5+k3s1"), "v1.31.5+k3s1")
        XCTAssertEqual(shellQuote(""), "''")
        XCTAssertEqual(shellQuote("a b"), "'a b'")
        XCTAssertEqual(shellQuote("it's"), "'it'\\''s'")
    }

    func testTextWithoutVariablesRendersUnchanged() throws {
        let t = try k3sTemplate("echo 'literal $x' \"{\" }}")
        XCTAssertEqual(t.render(TemplateVariables(values: [:]), .shell), "echo 'literal $x' \"{\" }}")
        XCTAssertEqual(t.description, t.source)
    }

    func testUnknownAndUnclosedVariables() {
        XCTAssertThrowsError(try Template("{{ cluster.name }}"), "the engine alone has no K3s variables")
        XCTAssertThrowsError(try k3sTemplate("x {{ host.nmae }}")) { error in
            let message = (error as? TemplateError)?.message ?? ""
            XCTAssertTrue(message.contains("unknown template variable \"host.nmae\""), message)
            XCTAssertTrue(message.contains("(did you mean \"host.name\"?)"), message)
        }
        XCTAssertThrowsError(try k3sTemplate("{{ token }}")) { error in
            // Secrets are not template variables.
            XCTAssertTrue(((error as? TemplateError)?.message ?? "").contains("\"token\""))
        }
        XCTAssertThrowsError(try k3sTemplate("{{ host.name")) { error in
            XCTAssertTrue(((error as? TemplateError)?.message ?? "").contains("unclosed"))
        }
        for name in K3sActions.templateVariables {
            XCTAssertNoThrow(try k3sTemplate("{{ \(name) }}"), name)
        }
    }

    func testServerURLBracketsIPv6() throws {
        let ip = try XCTUnwrap(IPv6Address("fd00:10::1"))
        XCTAssertEqual(serverURL(ip), "https://[fd00:10::1]:6443")
        XCTAssertEqual(serverURL(try XCTUnwrap(IPv6Address("2001:db8:0:0:0:0:0:5")), port: 443), "https://[2001:db8::5]:443")
        let url = try XCTUnwrap(URL(string: serverURL(ip)))
        XCTAssertEqual(url.port, 6443)
    }

    func testVariablesForAHost() throws {
        let inventory = Fixtures.inventory([("a1", .agent), ("s1", .server), ("s2", .server)], path: "/srv/inv/lab.toml",
                                           clusterName: "lab")
        let a1 = try XCTUnwrap(inventory.host(named: "a1"))
        let vars = TemplateVariables(host: a1, inventory: inventory)
        XCTAssertEqual(vars["host.name"], "a1")
        XCTAssertEqual(vars["host.role"], "agent")
        XCTAssertEqual(vars["host.node_ip"], a1.nodeIP.description)
        XCTAssertEqual(vars["host.ra_interface"], "")
        XCTAssertEqual(vars["cluster.name"], "lab")
        XCTAssertEqual(vars["first_server.name"], "s1", "the first server, not the first host")
        XCTAssertEqual(vars["server_url"], "https://[\(inventory.host(named: "s1")!.nodeIP)]:6443")
        XCTAssertEqual(vars["inventory_dir"], "/srv/inv")
        for name in K3sActions.templateVariables where name != "host.ra_interface" {
            XCTAssertFalse(vars[name].isEmpty, "\(name) has no value")
        }
    }
}
