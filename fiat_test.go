package fiat

import (
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
	const want = Hash("gfvxl4rphoeb5yi4gzve274rv5w4q3qrvanlyvwzj56ly72ddcvq")
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
		if err := CheckName("service", ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
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
		err := CheckName("env", bad)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "env name") {
			t.Errorf("CheckName(%q) = %v, want an env name error containing %q", bad, err, want)
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
	for host, want := range map[string]string{
		"hello.localhost":          "hello",
		"hello.localhost:8080":     "hello",
		"HELLO--Staging.localhost": "hello--staging",
		"hello.localhost.":         "hello",
		"hello.localhost.:8080":    "hello",
	} {
		if got, ok := a.Label(host); !ok || got != want {
			t.Errorf("Label(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
	for _, host := range []string{"localhost", "localhost:8080", ".localhost", "a.b.localhost", "hellolocalhost", "hello.example.com", "127.0.0.1:8080"} {
		if got, ok := a.Label(host); ok {
			t.Errorf("Label(%q) = %q, want no label", host, got)
		}
	}
}
