// Package script runs script services: HTTP services written in Starlark, a
// small dialect of Python, that run inside fiat. A version is compiled once
// ([Compile]), its top level runs once ([Program.Start]) and its globals are
// then frozen, so that many requests run it in parallel on every core.
// Compiled programs are kept on disk by a [Cache].
//
// What a script service's author writes (routes, requests, responses,
// built-ins, limits, tests) is documented in docs/scripts.md at the root of
// the repository.
package script
