import ArgumentParser
@main struct Fleet: ParsableCommand { func run() {} }
