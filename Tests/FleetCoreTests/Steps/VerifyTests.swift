import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest

final class VerifyTests: XCTestCase {
    /// s1, a1, a2 with node IPs fd00:10::1…3; the default ranges fd00:42::/56 and fd00:43::/112.
    let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])

    static func node(_ name: String, ip: String, cidr: String?, ready: String = "True", control: Bool = false,
                     etcd: Bool = false) -> String {
        let etcdLabel = etcd ? #","node-role.kubernetes.io/etcd":"true""# : ""
        let labels = control ? #"{"node-role.kubernetes.io/control-plane":"true","node-role.kubernetes.io/master":"true"\#(etcdLabel)}"# : "{}"
        let spec = cidr.map { #"{"podCIDR":"\#($0)","podCIDRs":["\#($0)"]}"# } ?? "{}"
        return """
            {"apiVersion":"v1","kind":"Node","metadata":{"name":"\(name)","labels":\(labels),
             "annotations":{"k3s.io/internal-ip":"\(ip)"}},"spec":\(spec),
             "status":{"addresses":[{"type":"InternalIP","address":"\(ip)"},{"type":"Hostname","address":"\(name)"}],
             "conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"\(ready)","reason":"KubeletReady","message":"kubelet is posting ready status"}],
             "nodeInfo":{"kubeletVersion":"v1.31.5+k3s1"}}}
            """
    }

    static func list(_ items: [String]) -> String {
        #"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":["# + items.joined(separator: ",") + "]}"
    }

    static let nodes = list([
        node("s1", ip: "fd00:10::1", cidr: "fd00:42::/64", control: true),
        node("a1", ip: "fd00:10:0:0:0:0:0:2", cidr: "fd00:42:0:1::/64"),
        node("a2", ip: "FD00:10::3", cidr: "fd00:42:0:2::/64"),
    ])

    static let pods = list([
        #"{"kind":"Pod","metadata":{"name":"coredns-x","namespace":"kube-system"},"spec":{"nodeName":"s1"},"status":{"phase":"Running","hostIP":"fd00:10::1","podIP":"fd00:42::2","podIPs":[{"ip":"fd00:42::2"}]}}"#,
        #"{"kind":"Pod","metadata":{"name":"svclb-traefik-a1","namespace":"kube-system"},"spec":{"nodeName":"a1"},"status":{"phase":"Running","podIP":"fd00:42:0:1::2","podIPs":[{"ip":"fd00:42:0:1::2"}]}}"#,
        #"{"kind":"Pod","metadata":{"name":"helm-install-traefik-z","namespace":"kube-system"},"spec":{"nodeName":"s1"},"status":{"phase":"Succeeded","podIP":"10.42.0.9"}}"#,
        #"{"kind":"Pod","metadata":{"name":"pending","namespace":"default"},"spec":{},"status":{"phase":"Pending"}}"#,
        #"{"kind":"Pod","metadata":{"name":"node-exporter","namespace":"monitoring"},"spec":{"hostNetwork":true,"nodeName":"a2"},"status":{"phase":"Running","podIP":"fd00:10::3","podIPs":[{"ip":"fd00:10::3"}]}}"#,
    ])

    static let services = list([
        #"{"kind":"Service","metadata":{"name":"kubernetes","namespace":"default"},"spec":{"clusterIP":"fd00:43::1","clusterIPs":["fd00:43::1"],"type":"ClusterIP","ipFamilies":["IPv6"]}}"#,
        #"{"kind":"Service","metadata":{"name":"kube-dns","namespace":"kube-system"},"spec":{"clusterIP":"fd00:43::a","clusterIPs":["fd00:43::a"],"type":"ClusterIP"}}"#,
        #"{"kind":"Service","metadata":{"name":"headless","namespace":"default"},"spec":{"clusterIP":"None","clusterIPs":["None"],"type":"ClusterIP"}}"#,
        #"{"kind":"Service","metadata":{"name":"ext","namespace":"default"},"spec":{"type":"ExternalName"}}"#,
    ])

    func evaluate(nodes: String = nodes, pods: String = pods, services: String = services) throws -> VerifyReport {
        Verify.evaluate(inventory: inventory,
                        nodes: try KubeJSON.decode(KubeJSON.Node.self, nodes),
                        pods: try KubeJSON.decode(KubeJSON.Pod.self, pods),
                        services: try KubeJSON.decode(KubeJSON.Service.self, services))
    }

    func testAHealthyClusterPassesAndAddressesAreComparedParsed() throws {
        let r = try evaluate()
        XCTAssertEqual(r.problems, [])
        XCTAssertEqual(r.podsChecked, 2, "hostNetwork, Succeeded and IP-less pods are skipped")
        XCTAssertEqual(r.servicesChecked, 2, "headless and ExternalName services have no cluster IP")
        XCTAssertEqual(r.table, """
            NODE  ROLE           INTERNAL-IP          POD-CIDR          READY
            s1    control-plane  fd00:10::1           fd00:42::/64      Ready
            a1    agent          fd00:10:0:0:0:0:0:2  fd00:42:0:1::/64  Ready
            a2    agent          FD00:10::3           fd00:42:0:2::/64  Ready
            """)
    }

    func testEveryServerMustBeAControlPlaneEtcdMemberAndAgentsMustNot() throws {
        let inv = Fixtures.inventory([("s1", .server), ("s2", .server), ("s3", .server), ("a1", .agent)])
        func nodes(_ s2Control: Bool, _ s3Etcd: Bool, _ a1Control: Bool) throws -> [KubeJSON.Node] {
            try KubeJSON.decode(KubeJSON.Node.self, Self.list([
                Self.node("s1", ip: "fd00:10::1", cidr: "fd00:42::/64", control: true, etcd: true),
                Self.node("s2", ip: "fd00:10::2", cidr: "fd00:42:0:1::/64", control: s2Control, etcd: s2Control),
                Self.node("s3", ip: "fd00:10::3", cidr: "fd00:42:0:2::/64", control: true, etcd: s3Etcd),
                Self.node("a1", ip: "fd00:10::4", cidr: "fd00:42:0:3::/64", control: a1Control, etcd: a1Control),
            ]))
        }
        let healthy = Verify.evaluate(inventory: inv, nodes: try nodes(true, true, false), pods: [], services: [])
        XCTAssertEqual(healthy.problems, [])
        XCTAssertEqual(healthy.rows.map(\.role), ["control-plane,etcd", "control-plane,etcd", "control-plane,etcd", "agent"])

        let wrong = Verify.evaluate(inventory: inv, nodes: try nodes(false, false, true), pods: [], services: [])
        XCTAssertEqual(wrong.problems, [
            "s2: registered without the control-plane role, although the inventory says server (it runs K3s as an agent: fleet reset --limit s2, then fleet up)",
            "s3: a control-plane node but not an etcd member; with several servers each must be one (the first server needs cluster-init, the others server: and the token)",
            "a1: a control-plane node, although the inventory says agent (fleet reset --limit a1, then fleet up)",
        ])
        // One server: no etcd needed (K3s uses SQLite).
        let single = Verify.evaluate(inventory: inventory, nodes: try KubeJSON.decode(KubeJSON.Node.self, Self.nodes),
                                     pods: [], services: [])
        XCTAssertEqual(single.problems, [])
    }

    func testListsExactlyWhatIsNotYetTrue() throws {
        let nodes = Self.list([
            Self.node("s1", ip: "fd00:10::1", cidr: "fd00:42::/64", control: true),
            Self.node("a1", ip: "fd00:10::99", cidr: "fd00:99::/64", ready: "False"),
            Self.node("stray", ip: "fd00:10::7", cidr: "fd00:42:0:7::/64"),
        ])
        let pods = Self.list([
            #"{"kind":"Pod","metadata":{"name":"p4","namespace":"default"},"spec":{},"status":{"phase":"Running","podIP":"10.42.1.5","podIPs":[{"ip":"10.42.1.5"}]}}"#,
            #"{"kind":"Pod","metadata":{"name":"p6","namespace":"default"},"spec":{},"status":{"phase":"Running","podIPs":[{"ip":"fd00:99::5"}]}}"#,
        ])
        let services = Self.list([
            #"{"kind":"Service","metadata":{"name":"far","namespace":"default"},"spec":{"clusterIPs":["fd00:44::1"]}}"#,
        ])
        let r = try evaluate(nodes: nodes, pods: pods, services: services)
        XCTAssertEqual(r.problems, [
            "a1: not Ready (KubeletReady: kubelet is posting ready status)",
            "a1: InternalIP fd00:10::99 is not node_ip fd00:10::2",
            "a1: podCIDR fd00:99::/64 is outside cluster_cidr fd00:42::/56",
            "a2: not a node of the cluster yet",
            "pod default/p4: IP 10.42.1.5 is not IPv6",
            "pod default/p6: IP fd00:99::5 is outside cluster_cidr fd00:42::/56",
            "service default/far: cluster IP fd00:44::1 is outside service_cidr fd00:43::/112",
        ])
        XCTAssertEqual(r.notes, ["node(s) not in the inventory: stray"])
        XCTAssertTrue(r.table.contains("a2    agent          -"), r.table)
        XCTAssertTrue(r.table.contains("NotReady (False)"), r.table)
    }

    func testAPodCIDRBroaderThanTheClusterRangeIsOutside() throws {
        let nodes = Self.list([
            Self.node("s1", ip: "fd00:10::1", cidr: "fd00::/16", control: true),
            Self.node("a1", ip: "fd00:10::2", cidr: nil),
            Self.node("a2", ip: "10.0.0.3", cidr: "fd00:42:0:2::/64"),
        ])
        let r = try evaluate(nodes: nodes, pods: Self.list([]), services: Self.list([]))
        XCTAssertEqual(r.problems, [
            "s1: podCIDR fd00::/16 is outside cluster_cidr fd00:42::/56",
            "a1: no podCIDR allocated yet",
            "a2: InternalIP 10.0.0.3 is not node_ip fd00:10::3",
            "a2: InternalIP 10.0.0.3 is not IPv6 (an IPv6-only node must have only IPv6 addresses)",
        ])
    }

    func testCommandOutputIsSplitAndUnreadableOutputIsAProblem() {
        let out = "@@fleet-fact:nodes\n\(Self.nodes)\n@@fleet-fact:pods\n\(Self.pods)\n@@fleet-fact:svc\n\(Self.services)\n"
        XCTAssertEqual(Verify.evaluate(output: out, inventory: inventory).problems, [])
        let down = "@@fleet-fact:nodes\n@@fleet-fact:pods\n@@fleet-fact:svc\n"
        XCTAssertEqual(Verify.evaluate(output: down, inventory: inventory).problems,
                       ["the API did not answer with node, pod and service lists yet"])
        XCTAssertTrue(Verify.command.contains("/usr/local/bin/k3s kubectl get nodes -o json"))
        XCTAssertTrue(Verify.command.contains("/usr/local/bin/k3s kubectl get pods -A -o json"))
        XCTAssertTrue(Verify.command.contains("/usr/local/bin/k3s kubectl get svc -A -o json"))
    }
}
