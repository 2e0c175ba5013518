import FleetCore
import Foundation

/// Whether each add-on's `helm-install-<name>` Job finished, from `kubectl get helmcharts,jobs,pods -o json`.
public enum AddonStatus {
    public struct Job: Decodable, Sendable {
        public struct Status: Decodable, Sendable {
            public var conditions: [KubeJSON.Condition]?
            public var failed: Int?
            public var succeeded: Int?
        }
        public var metadata: KubeJSON.Metadata
        public var status: Status?

        func condition(_ type: String) -> KubeJSON.Condition? { status?.conditions?.first { $0.type == type && $0.status == "True" } }
    }

    /// One add-on's state.
    public enum State: Sendable, Equatable {
        case complete
        case waiting(String)
        /// The job failed: its name and the failing pod's, when one is known.
        case failed(job: String, pod: String?, reason: String)
    }

    public static func jobName(_ addon: String) -> String { "helm-install-\(addon)" }

    /// Pure: each add-on's state from the HelmChart names present, the Jobs and the pods in kube-system.
    public static func evaluate(addons: [String], charts: [String], jobs: [Job], pods: [KubeJSON.Pod]) -> [String: State] {
        var out: [String: State] = [:]
        for addon in addons {
            let name = jobName(addon)
            guard charts.contains(addon) else {
                out[addon] = .waiting("HelmChart \(addon) not applied yet (K3s reads its manifests directory every 15 s)")
                continue
            }
            guard let job = jobs.first(where: { $0.metadata.name == name }) else {
                out[addon] = .waiting("job \(name) not created yet")
                continue
            }
            if job.condition("Complete") != nil {
                out[addon] = .complete
            } else if let failed = job.condition("Failed") {
                let pod = failedPod(job: name, pods: pods)
                out[addon] = .failed(job: name, pod: pod, reason: [failed.reason, failed.message].compactMap { $0 }.joined(separator: ": "))
            } else {
                out[addon] = .waiting("job \(name) running (\(job.status?.failed ?? 0) failed attempt(s))")
            }
        }
        return out
    }

    /// The job's failed pod (the last by name), if one is listed.
    static func failedPod(job: String, pods: [KubeJSON.Pod]) -> String? {
        pods.filter { $0.metadata.labels?["job-name"] == job && $0.status?.phase == "Failed" }.map(\.metadata.name).sorted().last
    }

    /// The pods of one job.
    static func podsCommand(job: String) -> String {
        "\(K3sInstall.binaryPath) kubectl get pods -n \(AddonFiles.helmChartNamespace) -l job-name=\(shellQuote(job)) -o json </dev/null"
    }

    /// The command that prints a failed pod's last log lines.
    public static func logCommand(pod: String) -> String {
        "\(K3sInstall.binaryPath) kubectl logs -n \(AddonFiles.helmChartNamespace) \(shellQuote(pod)) --tail=20 </dev/null 2>&1"
    }

    /// The sections verify adds to its command when there are add-ons.
    static func addFacts(_ s: inout FactScript) {
        let k = "\(K3sInstall.binaryPath) kubectl get -n \(AddonFiles.helmChartNamespace)"
        s.add("helmcharts", "\(k) helmcharts.helm.cattle.io -o json </dev/null")
        s.add("jobs", "\(k) jobs.batch -o json </dev/null")
    }

    struct Named: Decodable { var metadata: KubeJSON.Metadata }

    /// Parses verify's sections: nil when the API did not list them.
    static func parse(_ sections: [String: String], addons: [String], pods: [KubeJSON.Pod]) -> [String: State]? {
        guard let charts = try? KubeJSON.decode(Named.self, sections["helmcharts"] ?? ""),
              let jobs = try? KubeJSON.decode(Job.self, sections["jobs"] ?? "") else { return nil }
        return evaluate(addons: addons, charts: charts.map(\.metadata.name), jobs: jobs, pods: pods)
    }
}
