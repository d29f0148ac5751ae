package project

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

func tarOf(t testing.TB, b Bundle) []byte {
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

// rawHeader is a ustar header block, for the entries archive/tar's writer
// will not write: sparse files, oversized PAX headers, odd spellings.
func rawHeader(name string, typeflag byte, size int64) []byte {
	b := make([]byte, blockSize)
	copy(b[0:100], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typeflag
	copy(b[257:], "ustar\x0000")
	return withChecksum(b)
}

func withChecksum(b []byte) []byte {
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// rawEntry is a header and its data, padded to whole blocks.
func rawEntry(hdr []byte, data []byte) []byte {
	out := append(slices.Clone(hdr), data...)
	return append(out, make([]byte, -len(data)&(blockSize-1))...)
}

// paxEntry is a PAX extended header holding records (key, value, ...),
// which apply to the entry after it.
func paxEntry(records ...string) []byte {
	var data []byte
	for i := 0; i < len(records); i += 2 {
		rest := " " + records[i] + "=" + records[i+1] + "\n"
		n := len(rest)
		for len(strconv.Itoa(n))+len(rest) != n {
			n = len(strconv.Itoa(n)) + len(rest)
		}
		data = append(data, strconv.Itoa(n)+rest...)
	}
	return rawEntry(rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(data))), data)
}

var endOfArchive = make([]byte, 2*blockSize)

// manifestEntry is a fiat.toml entry, so that a crafted stream is a
// plausible project.
var manifestEntry = rawEntry(rawHeader("fiat.toml", tar.TypeReg, 17), []byte("[services.hello]\n"))

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// A sparse entry sends a few blocks and expands to any size in memory: a
// 10 KB request once grew the server by 262 MB.
func TestReadTarRefusesSparseFiles(t *testing.T) {
	const limit = 1 << 20
	const expanded = 4 * limit // small enough not to hurt when the refusal fails
	block := bytes.Repeat([]byte("x"), blockSize)
	oldGNU := rawHeader("main.star", tar.TypeGNUSparse, blockSize)
	copy(oldGNU[257:], "ustar  \x00") // the old GNU format
	copy(oldGNU[386:], fmt.Sprintf("%011o\x00%011o\x00", 0, blockSize))
	copy(oldGNU[483:], fmt.Sprintf("%011o\x00", expanded))
	withChecksum(oldGNU)
	tests := map[string][]byte{
		"old GNU": rawEntry(oldGNU, block),
		"PAX 0.0": concat(
			paxEntry("GNU.sparse.size", strconv.Itoa(expanded), "GNU.sparse.numblocks", "1", "GNU.sparse.offset", "0", "GNU.sparse.numbytes", "512"),
			rawEntry(rawHeader("main.star", tar.TypeReg, blockSize), block)),
		"PAX 0.1": concat(
			paxEntry("GNU.sparse.size", strconv.Itoa(expanded), "GNU.sparse.numblocks", "1", "GNU.sparse.map", "0,512"),
			rawEntry(rawHeader("main.star", tar.TypeReg, blockSize), block)),
		"PAX 1.0": concat(
			paxEntry("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "main.star", "GNU.sparse.realsize", strconv.Itoa(expanded)),
			rawEntry(rawHeader("GNUSparseFile.0/main.star", tar.TypeReg, 2*blockSize), concat([]byte("1\n0\n512\n"), make([]byte, blockSize-8), block))),
	}
	for name, entry := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ReadTar(bytes.NewReader(concat(manifestEntry, entry, endOfArchive)), limit)
			want := "project bundle: main.star is a sparse file, which expands to more than is sent: send its data, as `fiat deploy` does"
			if err == nil || err.Error() != want {
				t.Errorf("got %v, want %s", err, want)
			}
		})
	}
}

// What counts against the limit is the size of the files, not the bytes
// sent, and a size is checked before anything is allocated for it.
func TestReadTarCountsTheSizeFilesClaim(t *testing.T) {
	stream := concat(manifestEntry,
		paxEntry("size", strconv.FormatInt(1<<50, 10)),
		rawEntry(rawHeader("main.star", tar.TypeReg, 0), nil),
		endOfArchive)
	_, err := ReadTar(bytes.NewReader(stream), 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
	// Files within the limit one by one, over it together.
	b := bundleOf("[services.hello]\n")
	b.Files = append(b.Files, fiat.File{Path: "a.star", Data: make([]byte, 600)}, fiat.File{Path: "b.star", Data: make([]byte, 600)})
	if _, err := ReadTar(bytes.NewReader(tarOf(t, b)), 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
}

// A stream cut anywhere, and in particular where a header would start,
// must not read as a whole project with fewer files.
func TestReadTarRefusesTruncatedStreams(t *testing.T) {
	b := bundleOf("[services.hello]\n", "main.star", "lib.star")
	b.Files = append(b.Files,
		fiat.File{Path: strings.Repeat("long/", 30) + "x.star", Data: []byte("a long path, in a PAX header")},
		fiat.File{Path: "empty.star", Data: nil},
		fiat.File{Path: "one-block.star", Data: bytes.Repeat([]byte("x"), blockSize)},
		// Two blocks of zeros that are a file's data, not the end marker.
		fiat.File{Path: "zeros.star", Data: make([]byte, 2*blockSize)},
	)
	stream := tarOf(t, b)
	if _, err := ReadTar(bytes.NewReader(stream), 1<<20); err != nil {
		t.Fatalf("the whole stream: %v", err)
	}
	// GNU tar pads a stream with zeros to a whole record.
	if _, err := ReadTar(bytes.NewReader(concat(stream, make([]byte, 10240))), 1<<20); err != nil {
		t.Errorf("the stream padded to a record: %v", err)
	}
	for cut := range len(stream) {
		_, err := ReadTar(bytes.NewReader(stream[:cut]), 1<<20)
		if cut%blockSize == 0 && !errors.Is(err, errTruncated) {
			t.Errorf("cut at block %d: got %v, want %v", cut/blockSize, err, errTruncated)
		}
		if err == nil {
			t.Errorf("cut at byte %d: read as a whole bundle", cut)
		}
	}
	if got := errTruncated.Error(); !strings.HasPrefix(got, "the project bundle is truncated: ") {
		t.Errorf("got message %q", got)
	}
}

// Each entry costs memory and work however small it is.
func TestReadTarLimitsFiles(t *testing.T) {
	many := func(n int) Bundle {
		b := bundleOf("[services.hello]\n")
		for i := range n - 1 {
			b.Files = append(b.Files, fiat.File{Path: fmt.Sprintf("f%d.star", i)})
		}
		return b
	}
	if _, err := ReadTar(bytes.NewReader(tarOf(t, many(maxFiles))), 32<<20); err != nil {
		t.Errorf("%d files: %v", maxFiles, err)
	}
	_, err := ReadTar(bytes.NewReader(tarOf(t, many(maxFiles+1))), 32<<20)
	if want := "project bundle has more than 10000 files: leave files no service needs out of service dirs"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestReadTarLimitsPaths(t *testing.T) {
	ok := strings.Repeat("a/", maxPathLen/2-5) + "x.star"
	long := strings.Repeat("a/", maxPathLen/2) + "x.star"
	if _, err := ReadTar(bytes.NewReader(tarOf(t, bundleOf("", ok))), 1<<20); err != nil {
		t.Errorf("a path of %d bytes: %v", len(ok), err)
	}
	for name, format := range map[string]tar.Format{"PAX": tar.FormatPAX, "GNU": tar.FormatGNU} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Format: format}); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		_, err := ReadTar(&buf, 1<<20)
		want := `project bundle: the path "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/"… is 1030 bytes long: paths must be at most 1024 bytes`
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", name, err, want)
		}
	}
}

// archive/tar reads a whole PAX header into memory: it must stay small.
func TestReadTarRefusesHugePAXHeaders(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	stream := concat(manifestEntry, paxEntry("comment", huge), rawEntry(rawHeader("main.star", tar.TypeReg, 0), nil), endOfArchive)
	_, err := ReadTar(bytes.NewReader(stream), 32<<20)
	if err == nil || !strings.HasPrefix(err.Error(), "reading project bundle: ") {
		t.Errorf("got %v, want an error reading the bundle", err)
	}
}

// The same path spelled another way is still the same file.
func TestReadTarRefusesAPathSpelledTwice(t *testing.T) {
	prefixed := rawHeader("main.star", tar.TypeReg, 0)
	copy(prefixed[0:100], make([]byte, 100))
	copy(prefixed[0:], "b.star")
	copy(prefixed[345:], "a") // ustar's prefix field: a/b.star
	withChecksum(prefixed)
	tests := map[string][]byte{
		"PAX path": concat(
			rawEntry(rawHeader("main.star", tar.TypeReg, 0), nil),
			paxEntry("path", "main.star"),
			rawEntry(rawHeader("other.star", tar.TypeReg, 0), nil)),
		"after a NUL": concat(
			rawEntry(rawHeader("main.star", tar.TypeReg, 0), nil),
			rawEntry(rawHeader("main.star\x00.bak", tar.TypeReg, 0), nil)),
		"ustar prefix": concat(
			paxEntry("path", "a/b.star"),
			rawEntry(rawHeader("x.star", tar.TypeReg, 0), nil),
			rawEntry(prefixed, nil)),
	}
	for name, entries := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ReadTar(bytes.NewReader(concat(manifestEntry, entries, endOfArchive)), 1<<20)
			if err == nil || !strings.HasSuffix(err.Error(), " appears twice") {
				t.Errorf("got %v, want a path that appears twice", err)
			}
		})
	}
}

// A path with a newline could forge a line of a deploy's problems.
func TestReadTarRefusesControlCharacters(t *testing.T) {
	for _, name := range []string{"main.star\nfiat.toml:1:1: all good", "a\tb.star", "bad\xffutf8.star"} {
		stream := concat(manifestEntry, rawEntry(rawHeader(name, tar.TypeReg, 0), nil), endOfArchive)
		_, err := ReadTar(bytes.NewReader(stream), 1<<20)
		if err == nil || !strings.HasPrefix(err.Error(), "project bundle: unsafe path ") {
			t.Errorf("%q: got %v, want an unsafe path", name, err)
		}
	}
}

// Whatever a client sends, ReadTar refuses it or reads a bundle that
// writes back to a stream it reads the same, and never panics.
func FuzzReadTar(f *testing.F) {
	f.Add(tarOf(f, bundleOf("[services.hello]\n", "main.star", strings.Repeat("long/", 30)+"x.star")))
	f.Add(concat(manifestEntry, paxEntry("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.realsize", "4096"), rawEntry(rawHeader("main.star", tar.TypeReg, 0), nil), endOfArchive))
	f.Add(concat(manifestEntry, endOfArchive[:blockSize]))
	f.Fuzz(func(t *testing.T, stream []byte) {
		b, err := ReadTar(bytes.NewReader(stream), 1<<20)
		if err != nil {
			return
		}
		again, err := ReadTar(bytes.NewReader(tarOf(t, b)), 1<<20)
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Errorf("the bundle read did not read back the same: %v", err)
		}
	})
}
