package sqlstore

import (
	"context"
	"sync"
)

// Signal tells the waiters of a store's Wait of the last position
// committed.
type Signal struct {
	mu   sync.Mutex
	last int64
	// next is closed at the next commit or wake-up.
	next chan struct{}
}

// NewSignal returns a Signal with no position committed yet.
func NewSignal() *Signal { return &Signal{next: make(chan struct{})} }

// Committed wakes every waiter if position is later than every position
// committed before: it may be told of one commit twice, by the writer and
// by a notification.
func (s *Signal) Committed(position int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if position > s.last {
		s.last = position
		s.wake()
	}
}

// Wake wakes every waiter, to read the history: a change may have
// committed unseen (a connection that hears of commits was lost).
func (s *Signal) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wake()
}

func (s *Signal) wake() {
	close(s.next)
	s.next = make(chan struct{})
}

// Wait returns at once if a position after after has committed, and
// otherwise at the next commit or wake-up, or when ctx ends.
func (s *Signal) Wait(ctx context.Context, after int64) error {
	s.mu.Lock()
	last, next := s.last, s.next
	s.mu.Unlock()
	if last > after {
		return nil
	}
	select {
	case <-next:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
