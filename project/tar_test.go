package project

import (
	"archive/tar"
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

func tarOf(t *testing.T, b Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTarRoundTrip(t *testing.T) {
	b := Bundle{Files: []fiat.File{
		{Path: "empty.star", Data: []byte{}},
		{Path: "fiat.toml", Data: []byte("[services.hello]\n")},
		// Past the 100 bytes a plain tar header holds.
		{Path: strings.Repeat("long/", 40) + "main.star", Data: []byte("deep")},
		{Path: "main.star", Data: bytes.Repeat([]byte("x"), 1000)},
	}}
	stream := tarOf(t, b)
	got, err := ReadTar(bytes.NewReader(stream), int64(len(stream)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("got %+v, want %+v", got, b)
	}
	if !bytes.Equal(tarOf(t, got), stream) {
		t.Errorf("the same bundle wrote a different stream")
	}
}

func TestReadTarLimitsSize(t *testing.T) {
	stream := tarOf(t, bundleOf("[services.hello]\n", "main.star"))
	if _, err := ReadTar(bytes.NewReader(stream), int64(len(stream))); err != nil {
		t.Errorf("a stream of exactly the limit: %v", err)
	}
	for _, limit := range []int64{int64(len(stream)) - 1, 600, 0} {
		_, err := ReadTar(bytes.NewReader(stream), limit)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("limit %d: got %v, want ErrTooLarge", limit, err)
		}
	}
}

func TestReadTarRefusesUnsafeEntries(t *testing.T) {
	tests := []struct {
		name string
		hdr  tar.Header
		want string
	}{
		{"absolute", tar.Header{Name: "/etc/passwd"}, `project bundle: unsafe path "/etc/passwd": paths must be relative and slash-separated, without . or .. elements`},
		{"parent", tar.Header{Name: "../x.star"}, `project bundle: unsafe path "../x.star"`},
		{"parent inside", tar.Header{Name: "a/../../x.star"}, `project bundle: unsafe path "a/../../x.star"`},
		{"dot", tar.Header{Name: "./main.star"}, `project bundle: unsafe path "./main.star"`},
		{"root", tar.Header{Name: "."}, `project bundle: unsafe path "."`},
		{"empty element", tar.Header{Name: "a//b.star"}, `project bundle: unsafe path "a//b.star"`},
		{"directory", tar.Header{Name: "lib/", Typeflag: tar.TypeDir}, `project bundle: unsafe path "lib/"`},
		{"directory without slash", tar.Header{Name: "lib", Typeflag: tar.TypeDir}, "project bundle: lib is not a regular file"},
		{"symlink", tar.Header{Name: "main.star", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, "project bundle: main.star is not a regular file"},
		{"hard link", tar.Header{Name: "main.star", Typeflag: tar.TypeLink, Linkname: "fiat.toml"}, "project bundle: main.star is not a regular file"},
		{"twice", tar.Header{Name: "fiat.toml"}, "project bundle: fiat.toml appears twice"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, hdr := range []tar.Header{{Name: "fiat.toml", Typeflag: tar.TypeReg}, test.hdr} {
				if hdr.Typeflag == 0 {
					hdr.Typeflag = tar.TypeReg
				}
				hdr.Mode = 0o644
				if err := tw.WriteHeader(&hdr); err != nil {
					t.Fatal(err)
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := ReadTar(&buf, 1<<20)
			if err == nil || !strings.HasPrefix(err.Error(), test.want) {
				t.Errorf("got %v, want %s", err, test.want)
			}
		})
	}
}

func TestReadTarSortsFiles(t *testing.T) {
	b := bundleOf("", "main.star", "b.star", "a/z.star")
	slices.Reverse(b.Files)
	got, err := ReadTar(bytes.NewReader(tarOf(t, b)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if paths, want := filePaths(got.Files), []string{"a/z.star", "b.star", "fiat.toml", "main.star"}; !slices.Equal(paths, want) {
		t.Errorf("got files %q, want %q", paths, want)
	}
}

func TestReadTarRefusesGarbage(t *testing.T) {
	_, err := ReadTar(strings.NewReader(strings.Repeat("not a tar stream ", 100)), 1<<20)
	if err == nil || !strings.HasPrefix(err.Error(), "reading project bundle: ") {
		t.Errorf("got %v, want an error reading the bundle", err)
	}
}
