// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "fleet",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fleet", targets: ["fleet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        // The SSH layer: the only module that touches libssh2. Knows nothing of inventories.
        .target(
            name: "FleetSSH",
            dependencies: [
                "CLibSSH2",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Inventory, playbooks, runner, results, state, reporting. Imports no other project module.
        .target(
            name: "FleetCore",
            dependencies: [
                "TOMLKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The runner's Connection over FleetSSH: where the SSH layer meets the inventory.
        .target(
            name: "FleetRemote",
            dependencies: ["FleetCore", "FleetSSH", .product(name: "Logging", package: "swift-log")]
        ),
        // The K3s steps: see FleetCore's Connection, never an SSH session.
        .target(
            name: "FleetSteps",
            dependencies: ["FleetCore", "Yams"]
        ),
        // Thin executable: one file per verb under Subcommands/.
        .executableTarget(
            name: "fleet",
            dependencies: [
                "FleetCore", "FleetSteps", "FleetRemote",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FleetTestSupport",
            dependencies: ["FleetCore", "FleetSteps"],
            path: "Tests/FleetTestSupport"
        ),
        .testTarget(
            name: "FleetCoreTests",
            dependencies: ["FleetCore", "FleetSteps", "FleetTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        // FleetSSH's pure parts (known_hosts, the upload script, key files): no host needed.
        // FleetCore to check that its copies of shellQuote and the remote-path rules agree, and for
        // LocalCommand, which runs the shells the upload script is tried under.
        .testTarget(
            name: "FleetSSHTests",
            dependencies: ["FleetSSH", "FleetCore"]
        ),
        .testTarget(
            name: "FleetLabTests",
            dependencies: ["FleetCore", "FleetSteps", "FleetSSH", "FleetRemote", "FleetTestSupport"]
        ),
    ]
)
