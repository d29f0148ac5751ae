// Package script runs script services: HTTP services written in Starlark, a
// small dialect of Python, that run inside fiat. A version is compiled once
// ([Compile]), its top level runs once ([Program.Start]) and its globals are
// then frozen, so that many requests run it in parallel on every core.
// Compiled programs are kept on disk by a [Cache].
//
// What follows is what a script service's author writes.
//
// # Files
//
// A script service is a directory of .star files. main.star is where it
// starts. Other files are modules that main.star (or another module) loads
// by their path in the service's directory, subdirectories included:
//
//	load("lib/users.star", "find_user", "save_user")
//
// Each module runs once per version, however many modules load it. A load
// of a file that does not exist, of a path outside the service's directory,
// or one that makes a cycle is refused when the version is deployed, located
// at the load statement.
//
// Files ending in _test.star hold tests (see Tests below). They are part of
// the version but do not run when it starts.
//
// # Routes
//
// The top level of main.star and of the modules it loads declares routes:
//
//	def get_user(req):
//	    return {"id": req.params["id"]}
//
//	http.route("GET", "/users/{id}", get_user)
//	http.route("POST", "/users", create_user)
//	http.route("*", "/files/{path...}", serve_file)
//
// The method is an uppercase HTTP method, or "*" for any. A GET route also
// answers HEAD. The path may hold {name} wildcards, each matching one path
// segment, and end with a {name...} wildcard matching the rest of the path.
// A path ending in "/" matches only itself: "/" is the root, not every path.
// A request for "/files" where only "/files/{path...}" is declared is
// redirected to "/files/".
// When several routes match a request, the most specific one wins:
// "/users/me" over "/users/{id}". A request no route matches gets 404; one
// whose path matches but whose method does not gets 405, with an Allow
// header. Two routes that match the same requests, or that overlap with
// neither more specific, are refused at deploy, naming both. So is a
// version that declares no routes.
//
// Routes are declared while the version starts: http.route fails in a
// handler or a test.
//
// # Requests
//
// A handler is called with one argument, the request, which has:
//
//	req.method    "GET", "POST", ...
//	req.path      "/users/42"
//	req.params    the path's wildcards: {"id": "42"}
//	req.query     each query parameter's first value: {"page": "2"}
//	req.headers   headers, names in lowercase, repeated values joined by ", "
//	req.body      the body, as a string
//	req.json()    the body parsed as JSON; fails if it is not JSON
//
// A body larger than fiat accepts answers 413 when the handler reads it.
//
// # Responses
//
// What a handler returns is the response:
//
//	"text"                 200, text/plain; charset=utf-8
//	{"a": 1} or [1, 2]     200, application/json
//	None                   204, no body
//	response(status, body="", headers={})
//
// In response, body is a string, or a dict or list sent as JSON; a
// Content-Type header, when not given, follows the body's kind. A handler
// that returns anything else gets 500, saying what it returned.
//
// # Built-ins
//
// Besides Starlark's own built-ins (len, str, sorted, ...), every file sees:
//
//	http.route(method, path, handler)   declare a route (see Routes)
//	response(status, body, headers)     a response (see Responses)
//	json.encode(x), json.decode(s), json.indent(s), json.encode_indent(x)
//	time.now(), time.time(...), time.parse_time(...), time.parse_duration(...),
//	  time.from_timestamp(...), time.second, ...
//	log(*args)                          write one line to the service's log
//
// print does the same as log. Nothing else reaches outside the script: no
// files, network or environment.
//
// The globals of every module are frozen once the version has started: a
// handler can read them but not change them, as other requests run at the
// same time. State that outlives a request belongs in a datastore.
//
// The language is Starlark (https://github.com/google/starlark-go/blob/master/doc/spec.md)
// with while loops, sets, and if and for statements at top level. Functions
// cannot call themselves: write a loop instead.
//
// # Limits
//
// Each request runs under the service's limits from fiat.toml: max_steps,
// the execution steps it may take, and timeout, the time it may run. A
// request over its step limit gets 503, one over its time limit 504; the
// body says which limit, for example:
//
//	hello: request exceeded its limit of 1000000 execution steps (max_steps in fiat.toml)
//
// The top level of a version and each test run under the same limits. A
// request that fails gets 500 with where and why, which also goes to the
// service's log:
//
//	main.star:7: key "id" not in dict
//
// No request ever affects another.
//
// # Tests
//
// Every deploy runs the tests: each test_* function of each *_test.star
// file, each under the service's limits. Every test runs even if others
// fail, and each failure refuses the deploy, located at the failing
// assertion and naming the test:
//
//	main_test.star:5:14: test_get_user: assert.eq: got 404, want 200
//
// Test files see, besides the built-ins above:
//
//	assert.eq(got, want, msg=None)     got == want
//	assert.ne(got, unwanted, msg=None) got != unwanted
//	assert.true(cond, msg=None)        cond is true
//	assert.contains(container, item, msg=None)   item in container
//	assert.fails(fn, pattern)          fn() fails with an error matching the
//	                                   regular expression; returns the error
//	app.get(path, headers={})          call the service's own routes
//	app.post(path, body="", headers={})
//	app.put(path, body="", headers={})
//	app.delete(path, headers={})
//	app.request(method, path, body="", headers={})
//
// A body given as a dict or list is sent as JSON. The app functions return
// a response with .status (an int), .body (a string), .headers (a dict,
// names in lowercase) and .json() (the body parsed as JSON):
//
//	load("main.star", "slugify")
//
//	def test_slugify():
//	    assert.eq(slugify("Hello World"), "hello-world")
//
//	def test_create_user():
//	    r = app.post("/users", body={"name": "ann"})
//	    assert.eq(r.status, 201)
//	    assert.eq(r.json()["name"], "ann")
//
// A test file that loads main.star or its modules gets the started
// version's modules, as requests see them; they do not run again.
package script
