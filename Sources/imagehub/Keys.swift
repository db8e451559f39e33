import ArgumentParser
import Catalog
import HubCore
import HubServer

extension Role: ExpressibleByArgument {}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage API keys.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key; the key alone is printed on the last line.")

        @OptionGroup var data: DataOption
        @Option(help: "supplier, requester, trainer or admin.") var role: Role
        @Option(help: "Who the key is for.") var name = "cli"

        func run() async throws {
            let hub = try await Hub.open(path: data.data, processing: false)
            let (user, key) = try hub.catalog.createUser(name: name, role: role)
            print("created \(role.rawValue) key for '\(user.name)' (user \(user.id!)); it is shown only once:")
            print(key)
        }
    }
}
