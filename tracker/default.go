package tracker

import (
	"context"
	"net/http"
	"os"
	"time"
)

// The functions below act on Default.

// Track records that owner holds a resource of kind; see Registry.Track.
func Track(kind Kind, owner *Session, label string) Handle {
	return Default.track(kind, owner, label, 1)
}

// StartSession starts a session in Default; see Registry.StartSession.
func StartSession(label string, parent *Session) *Session {
	return Default.StartSession(label, parent)
}

// Go runs fn in a goroutine tracked in Default; see Registry.Go.
func Go(owner *Session, label string, fn func()) Handle {
	return Default.Go(owner, label, fn)
}

// Open opens a file tracked in Default; see Registry.Open.
func Open(owner *Session, name string) (*File, error) { return Default.Open(owner, name) }

// Create creates a file tracked in Default; see Registry.Create.
func Create(owner *Session, name string) (*File, error) { return Default.Create(owner, name) }

// OpenFile opens a file tracked in Default; see Registry.OpenFile.
func OpenFile(owner *Session, name string, flag int, perm os.FileMode) (*File, error) {
	return Default.OpenFile(owner, name, flag, perm)
}

// Dial connects with a connection tracked in Default; see Registry.Dial.
func Dial(ctx context.Context, owner *Session, network, address string) (*Conn, error) {
	return Default.Dial(ctx, owner, network, address)
}

// Listen listens with a listener tracked in Default; see Registry.Listen.
func Listen(ctx context.Context, owner *Session, network, address string) (*Listener, error) {
	return Default.Listen(ctx, owner, network, address)
}

// NewTimer starts a timer tracked in Default; see Registry.NewTimer.
func NewTimer(owner *Session, d time.Duration) *Timer { return Default.NewTimer(owner, d) }

// AfterFunc starts a timer tracked in Default; see Registry.AfterFunc.
func AfterFunc(owner *Session, d time.Duration, f func()) *Timer {
	return Default.AfterFunc(owner, d, f)
}

// NewTicker starts a ticker tracked in Default; see Registry.NewTicker.
func NewTicker(owner *Session, d time.Duration) *Ticker { return Default.NewTicker(owner, d) }

// Leftovers lists Default's live records; see Registry.Leftovers.
func Leftovers() []Record { return Default.Leftovers() }

// Handler serves Default; see Registry.Handler.
func Handler() http.Handler { return Default.Handler() }

// WriteExitSnapshot writes Default's exit report; see Registry.WriteExitSnapshot.
func WriteExitSnapshot() error { return Default.WriteExitSnapshot() }
