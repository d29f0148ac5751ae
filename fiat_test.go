package fiat

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleVersion() *Version {
	return &Version{
		Service: "hello",
		Config:  Config{Kind: Script, MaxSteps: 1000, Timeout: time.Second},
		Files: []File{
			{Path: "main.star", Data: []byte("print(1)\n")},
			{Path: "lib.star", Data: []byte("x = 1\n")},
		},
	}
}

func TestHashIsStableAcrossMachines(t *testing.T) {
	// A golden value: if this changes, every deployed version's address
	// changes with it, so the encoding may only change with ScriptAPI.
	got := HashVersion(sampleVersion())
	const want = Hash("jfrs4nfmua7wcqhntqjtif2phhtogfovhnd7ue4lq4vmp7phztfa")
	if len(got) != HashLen || strings.Trim(string(got), "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Fatalf("hash %q is not %d characters of lowercase base32", got, HashLen)
	}
	if got != want {
		t.Fatalf("HashVersion(sample) = %s, want %s", got, want)
	}
}

func TestHashCoversWhatDefinesAVersion(t *testing.T) {
	base := HashVersion(sampleVersion())
	reordered := sampleVersion()
	reordered.Files[0], reordered.Files[1] = reordered.Files[1], reordered.Files[0]
	reordered.Created = time.Now()
	if HashVersion(reordered) != base {
		t.Errorf("file order or creation time changed the hash")
	}
	changes := map[string]func(v *Version){
		"file contents":  func(v *Version) { v.Files[0].Data = []byte("print(2)\n") },
		"file path":      func(v *Version) { v.Files[1].Path = "util.star" },
		"extra file":     func(v *Version) { v.Files = append(v.Files, File{Path: "x.star"}) },
		"service name":   func(v *Version) { v.Service = "hello2" },
		"max steps":      func(v *Version) { v.Config.MaxSteps++ },
		"timeout":        func(v *Version) { v.Config.Timeout += time.Millisecond },
		"memory":         func(v *Version) { v.Config.Memory++ },
		"kind":           func(v *Version) { v.Config.Kind = Process },
		"uses":           func(v *Version) { v.Uses = map[string]Hash{"db": "abc"} },
		"moved contents": func(v *Version) { v.Files[0].Path, v.Files[0].Data = "main.starprint(1)\n", nil },
	}
	for name, change := range changes {
		v := sampleVersion()
		change(v)
		if HashVersion(v) == base {
			t.Errorf("changing the %s did not change the hash", name)
		}
	}
}

func TestHashPrefix(t *testing.T) {
	h := HashVersion(sampleVersion())
	for _, ok := range []string{string(h), string(h[:8]), h.Short()} {
		if err := CheckHashPrefix(ok); err != nil {
			t.Errorf("CheckHashPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "abc", string(h[:7]), "ABCDEFGHIJ", "abcdefg1", string(h) + "a"} {
		if err := CheckHashPrefix(bad); err == nil {
			t.Errorf("CheckHashPrefix(%q) accepted", bad)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"hello", "a", "pr-42", "api2", strings.Repeat("a", MaxNameLen)} {
		if err := CheckServiceName(ok); err != nil {
			t.Errorf("CheckServiceName(%q) = %v", ok, err)
		}
		if err := CheckEnvName(ok); err != nil {
			t.Errorf("CheckEnvName(%q) = %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                                "empty",
		"Hello":                           "start with a lowercase letter",
		"2fast":                           "start with a lowercase letter",
		"hello-":                          "end with a dash",
		"a--b":                            `"--"`,
		"hello_world":                     `'_'`,
		"héllo":                           `'é'`,
		strings.Repeat("a", MaxNameLen+1): "characters long",
	} {
		err := CheckEnvName(bad)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "env name") {
			t.Errorf("CheckEnvName(%q) = %v, want an env name error containing %q", bad, err, want)
		}
	}
}

// TestServiceNamesCannotTakeVersionAddresses checks that no service name
// has the shape of a version address, "<service>-<hash12>", while names
// that merely look alike stay allowed.
func TestServiceNamesCannotTakeVersionAddresses(t *testing.T) {
	for _, bad := range []string{"pay-nkd6hs5f6kay", "pay-" + HashVersion(sampleVersion()).Short(), "a-notification"} {
		err := CheckServiceName(bad)
		if err == nil || !strings.Contains(err.Error(), "version") || !strings.Contains(err.Error(), "rename") {
			t.Errorf("CheckServiceName(%q) = %v, want a refusal explaining the version address", bad, err)
		}
		if err := CheckEnvName(bad); err != nil {
			t.Errorf("CheckEnvName(%q) = %v: env addresses use \"--\" and cannot be confused", bad, err)
		}
	}
	for _, ok := range []string{"pay-nkd6hs5f6ka", "pay-nkd6hs5f6kays", "pay-nkd6hs5f6ka1", "paynkd6hs5f6kay0", "pay-nkd6hs5f6kay-x", "nkd6hs5f6kayab"} {
		if err := CheckServiceName(ok); err != nil {
			t.Errorf("CheckServiceName(%q) = %v", ok, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	a := Addresses{Domain: "localhost", Port: "8080"}
	h := HashVersion(sampleVersion())
	if got, want := a.Service("hello", Production), "http://hello.localhost:8080"; got != want {
		t.Errorf("production URL = %s, want %s", got, want)
	}
	if got, want := a.Service("hello", "staging"), "http://hello--staging.localhost:8080"; got != want {
		t.Errorf("staging URL = %s, want %s", got, want)
	}
	if got, want := a.Version("hello", h), "http://hello-"+h.Short()+".localhost:8080"; got != want {
		t.Errorf("version URL = %s, want %s", got, want)
	}
	if got := (Addresses{Domain: "example.com"}).Service("hello", Production); got != "http://hello.example.com" {
		t.Errorf("URL without port = %s", got)
	}
	short := h.Short()
	for host, want := range map[string]Address{
		"hello.localhost":                            {Service: "hello", Env: Production},
		"hello.localhost:8080":                       {Service: "hello", Env: Production},
		"HELLO--Staging.localhost":                   {Service: "hello", Env: "staging"},
		"hello.localhost.":                           {Service: "hello", Env: Production},
		"hello.localhost.:8080":                      {Service: "hello", Env: Production},
		"hello-" + short + ".localhost":              {Service: "hello", Version: short},
		"my-api-" + short + ".localhost":             {Service: "my-api", Version: short},
		"my-api--pr-7.localhost":                     {Service: "my-api", Env: "pr-7"},
		"pay-nkd6hs5f6kays.localhost":                {Service: "pay-nkd6hs5f6kays", Env: Production},
		"pay--" + short + ".localhost":               {Service: "pay", Env: short},
		"a-" + strings.ToUpper(short) + ".localhost": {Service: "a", Version: short},
	} {
		if got, ok := a.Parse(host); !ok || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", host, got, ok, want)
		}
	}
	for _, host := range []string{"localhost", "localhost:8080", ".localhost", "a.b.localhost", "hellolocalhost", "hello.example.com", "127.0.0.1:8080"} {
		if got, ok := a.Parse(host); ok {
			t.Errorf("Parse(%q) = %+v, want no address", host, got)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	c := Config{Kind: Script, MaxSteps: 5, Timeout: 1500 * time.Millisecond, Memory: 1 << 20}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"script","max_steps":5,"timeout":"1.5s","memory":1048576}`; string(data) != want {
		t.Errorf("Marshal = %s, want %s", data, want)
	}
	var back Config
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, c) {
		t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", data, back, err, c)
	}
	// Stores written before durations were strings hold nanoseconds.
	var old Config
	if err := json.Unmarshal([]byte(`{"kind":"script","max_steps":5,"timeout":1500000000}`), &old); err != nil || old.Timeout != 1500*time.Millisecond {
		t.Errorf("Unmarshal of nanoseconds = %+v, %v", old, err)
	}
	if err := json.Unmarshal([]byte(`{"timeout":"soon"}`), &old); err == nil {
		t.Error("Unmarshal accepted a timeout that is not a duration")
	}
}

func processVersion() *Version {
	return &Version{
		Service: "web",
		Config: Config{Kind: Process, Memory: 256 << 20, Env: map[string]string{"GREETING": "hi"}, Secrets: []string{"TOKEN"}, Process: &ProcessConfig{
			Run: "./server", Build: "go build -o server .", Instances: 2, Health: "/healthz",
			Workers:      map[string]string{"jobs": "./server -jobs"},
			StartTimeout: DefaultStartTimeout, StopTimeout: DefaultStopTimeout,
		}},
		Files: []File{{Path: "main.go", Data: []byte("package main\n")}},
	}
}

func TestHashCoversHowAProcessRuns(t *testing.T) {
	base := HashVersion(processVersion())
	changes := map[string]func(p *ProcessConfig){
		"run":           func(p *ProcessConfig) { p.Run = "./server -v" },
		"build":         func(p *ProcessConfig) { p.Build = "" },
		"release":       func(p *ProcessConfig) { p.Release = "./migrate" },
		"workers":       func(p *ProcessConfig) { p.Workers["mail"] = "./mail" },
		"health":        func(p *ProcessConfig) { p.Health = "" },
		"instances":     func(p *ProcessConfig) { p.Instances = 3 },
		"start timeout": func(p *ProcessConfig) { p.StartTimeout++ },
		"stop timeout":  func(p *ProcessConfig) { p.StopTimeout++ },
	}
	for name, change := range changes {
		v := processVersion()
		change(v.Config.Process)
		if HashVersion(v) == base {
			t.Errorf("changing the %s did not change the hash", name)
		}
	}
	for name, change := range map[string]func(c *Config){
		"env value":   func(c *Config) { c.Env["GREETING"] = "hello" },
		"env key":     func(c *Config) { c.Env = map[string]string{"GREETINGS": "hi"} },
		"secrets":     func(c *Config) { c.Secrets = nil },
		"no env":      func(c *Config) { c.Env = nil },
		"env moved":   func(c *Config) { c.Env, c.Process.Workers = c.Process.Workers, c.Env },
		"vars":        func(c *Config) { c.Vars = map[string]string{"A": "b"} },
		"env to vars": func(c *Config) { c.Env, c.Vars = nil, c.Env },
	} {
		v := processVersion()
		change(&v.Config)
		if HashVersion(v) == base {
			t.Errorf("changing the %s did not change the hash", name)
		}
	}
}

func TestProcessConfigJSON(t *testing.T) {
	want := processVersion().Config
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"start_timeout":"1m0s"`) {
		t.Errorf("durations should read as people write them: %s", data)
	}
	var got Config
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config through JSON:\n got %+v %+v\nwant %+v %+v", got, got.Process, want, want.Process)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c := processVersion().Config
	c.Vars = map[string]string{"TOKEN": "hunter2", "MODE": "fast"}
	shown := c.Redacted()
	if shown.Vars["TOKEN"] != SecretShown || shown.Vars["MODE"] != "fast" || c.Vars["TOKEN"] != "hunter2" {
		t.Errorf("redacted vars %v (original now %v), want TOKEN hidden, MODE shown, the original untouched", shown.Vars, c.Vars)
	}
	if env := shown.Environ(); env["GREETING"] != "hi" || env["TOKEN"] != SecretShown {
		t.Errorf("environ: %v", env)
	}
	c.Env["MODE"] = "slow"
	if env := c.Environ(); env["MODE"] != "fast" {
		t.Errorf("environ %v: vars must win over fiat.toml's env", env)
	}
}
