package starlark

// fiat: this file is fiat's (see FIAT.md). It bounds what one thread may do
// besides taking execution steps: the bytes of the values it makes, and the
// work its built-ins do, which is charged as steps so that the step limit
// bounds CPU and a cancelled thread stops inside a built-in too.

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// NestingLimit bounds how deeply nested a value may be when the interpreter
// walks it recursively: to hash, print or encode it. The walks recurse, and
// a value nested millions deep would exhaust the goroutine's stack, which
// Go cannot recover from. Deeper values fail with an error.
var NestingLimit = 1000

// MaxIntBits bounds the size of the ints a thread's operations make.
// Multiplying, dividing and converting ints to and from text take time
// that grows faster than their size, and a built-in cannot be interrupted
// halfway through one of those.
var MaxIntBits = 1 << 16

// Work in built-ins is charged as execution steps: one for each element a
// built-in visits or makes, and one for each stepBytes bytes it scans or
// copies.
const stepBytes = 64

// Sizes, in bytes, charged for the values the interpreter and built-ins
// make, as the Go runtime allocates them on 64-bit machines.
const (
	valueSize    = 16  // an interface: one element of a list's or tuple's array
	stringSize   = 16  // a string boxed in an interface, besides its bytes
	listSize     = 32  // a *List
	tupleSize    = 24  // a Tuple boxed in an interface, besides its array
	funcSize     = 64  // a *Function
	bucketAllocs = 456 // a hashtable bucket of 8 entries; see hashtable.go
	dictSize     = 512 // a *Dict or *Set, with the bucket it starts with
)

// SetMaxAllocs sets a limit on the bytes of the values the thread may make,
// counted as they are made, whether or not they are then kept. Zero, the
// default, means no limit. Past the limit the thread calls OnMaxAllocs if
// it is set, and otherwise cancels itself.
func (thread *Thread) SetMaxAllocs(max uint64) {
	thread.maxAllocs = max
}

// AddAllocs charges n bytes to the thread's allocation budget. It returns
// an error if the thread is cancelled, for that or any other reason, so
// that a built-in about to make a value of n bytes fails instead. Built-ins
// outside this package call it before they allocate in proportion to their
// inputs. A nil thread has no budget.
func (thread *Thread) AddAllocs(n uint64) error {
	if thread == nil {
		return nil
	}
	// The fast path, inlined: within the budget, and not cancelled.
	if n <= thread.maxAllocs-thread.Allocs && thread.cancelReason.Load() == nil {
		thread.Allocs += n
		return nil
	}
	return thread.addAllocs(n)
}

func (thread *Thread) addAllocs(n uint64) error {
	thread.Allocs = addSat(thread.Allocs, n)
	if thread.maxAllocs != 0 && thread.Allocs > thread.maxAllocs {
		if thread.OnMaxAllocs != nil {
			thread.OnMaxAllocs(thread)
		} else {
			thread.Cancel("too many allocations")
		}
	}
	return thread.cancelled()
}

// AddExecutionSteps charges n steps, as the interpreter does for each of
// its instructions, past the limit calling OnMaxSteps as it does. Built-ins
// call it for their work. It returns an error if the thread is cancelled,
// which is how a built-in learns, between two elements of its work, that
// it must stop. A nil thread charges nothing.
func (thread *Thread) AddExecutionSteps(n uint64) error {
	if thread == nil {
		return nil
	}
	// The fast path, inlined: within the limit, and not cancelled.
	if n < thread.maxSteps-thread.Steps && thread.cancelReason.Load() == nil {
		thread.Steps += n
		return nil
	}
	return thread.addSteps(n)
}

func (thread *Thread) addSteps(n uint64) error {
	thread.Steps = addSat(thread.Steps, n)
	if thread.maxSteps != 0 && thread.Steps >= thread.maxSteps {
		if thread.OnMaxSteps != nil {
			thread.OnMaxSteps(thread)
		} else {
			thread.Cancel("too many steps")
		}
	}
	return thread.cancelled()
}

// cancelled is the error a cancelled thread fails with, or nil.
func (thread *Thread) cancelled() error {
	if thread == nil {
		return nil
	}
	if reason := thread.cancelReason.Load(); reason != nil {
		return fmt.Errorf("Starlark computation cancelled: %s", *reason)
	}
	return nil
}

// scan charges for reading n bytes.
func (thread *Thread) scan(n int) error {
	return thread.AddExecutionSteps(uint64(n) / stepBytes)
}

// alloc charges for making n bytes: for keeping them, and for copying them.
func (thread *Thread) alloc(n uint64) error {
	if err := thread.AddAllocs(n); err != nil {
		return err
	}
	return thread.AddExecutionSteps(n / stepBytes)
}

// elems charges for visiting or making n elements of size bytes each.
func (thread *Thread) elems(n int, size uint64) error {
	if err := thread.AddAllocs(mulSat(uint64(n), size)); err != nil {
		return err
	}
	return thread.AddExecutionSteps(uint64(n))
}

// appendValue appends v to elems, charging the thread for the new array
// when append makes one.
func (thread *Thread) appendValue(elems []Value, v Value) ([]Value, error) {
	if len(elems) == cap(elems) {
		if err := thread.AddAllocs(uint64(2*cap(elems)+1) * valueSize); err != nil {
			return nil, err
		}
	}
	return append(elems, v), nil
}

// writeString writes s to out, charging the thread for it.
func writeString(thread *Thread, out *strings.Builder, s string) error {
	if err := thread.alloc(uint64(len(s))); err != nil {
		return err
	}
	out.WriteString(s)
	return nil
}

// stringAllocs is what making a string of n bytes charges.
func stringAllocs(n int) uint64 { return uint64(n) + stringSize }

// intResult is z, made by an operation of thread, unless it is larger than
// MaxIntBits. The thread is charged for its words.
func intResult(thread *Thread, z Int) (Value, error) {
	_, big := z.get()
	if big == nil {
		return z, nil
	}
	if n := big.BitLen(); n > MaxIntBits {
		return nil, fmt.Errorf("int too large: %d bits, more than the limit of %d bits", n, MaxIntBits)
	}
	return z, thread.alloc(uint64(len(big.Bits())) * 8)
}

// bitLen is the number of bits of i's absolute value.
func (i Int) bitLen() int {
	small, big := i.get()
	if big != nil {
		return big.BitLen()
	}
	return bits.Len64(uint64(max(small, -small)))
}

// contains reports whether x is one of elems, searching with the thread.
func contains(thread *Thread, elems []Value, x Value) (Value, error) {
	for _, elem := range elems {
		if err := thread.AddExecutionSteps(1); err != nil {
			return nil, err
		}
		if eq, err := equal(thread, elem, x); err != nil {
			return nil, err
		} else if eq {
			return True, nil
		}
	}
	return False, nil
}

func addSat(a, b uint64) uint64 {
	if s, carry := bits.Add64(a, b, 0); carry == 0 {
		return s
	}
	return math.MaxUint64
}

func mulSat(a, b uint64) uint64 {
	if hi, lo := bits.Mul64(a, b); hi == 0 {
		return lo
	}
	return math.MaxUint64
}
