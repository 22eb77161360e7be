// Package live wakes the devices connected to this server (by Server-Sent Events) when an
// approval request of their user changes. A wake-up carries no data: the woken stream reads
// the current state from the store, so a missed or merged wake-up loses nothing.
//
// On one SQLite server the Broker alone does it, in process. When several servers share one
// PostgreSQL database, a wake-up must reach the streams connected to the others too: Relay
// (postgres.go) sends every publication as a NOTIFY and delivers the notifications it listens
// to, its own included, to the local broker.
package live

import "sync"

type key struct{ app, user int64 }

// Broker fans wake-ups out to subscribers, per user. It never blocks a publisher.
type Broker struct {
	mu   sync.Mutex
	subs map[key]map[*Sub]struct{}
	// send, when set (SetSender), carries a publication to every server instead of waking
	// this one's subscribers directly; it reports false when it could not, and then this
	// server's subscribers are woken at once.
	send func(appID, userID int64) bool
}

// Sub is one subscription; C receives a value after one or more publications.
type Sub struct{ C chan struct{} }

// NewBroker returns an empty broker.
func NewBroker() *Broker { return &Broker{subs: map[key]map[*Sub]struct{}{}} }

// SetSender routes publications through send (see Broker.send). Call it before the broker is
// used.
func (b *Broker) SetSender(send func(appID, userID int64) bool) { b.send = send }

// Subscribe wakes the returned Sub on every change for the user; call cancel when done.
func (b *Broker) Subscribe(appID, userID int64) (s *Sub, cancel func()) {
	s = &Sub{C: make(chan struct{}, 1)}
	k := key{appID, userID}
	b.mu.Lock()
	if b.subs[k] == nil {
		b.subs[k] = map[*Sub]struct{}{}
	}
	b.subs[k][s] = struct{}{}
	b.mu.Unlock()
	return s, func() {
		b.mu.Lock()
		delete(b.subs[k], s)
		if len(b.subs[k]) == 0 {
			delete(b.subs, k)
		}
		b.mu.Unlock()
	}
}

// Publish wakes every subscriber of the user, on every server when a sender is set. A
// subscriber already woken stays woken once.
func (b *Broker) Publish(appID, userID int64) {
	if b.send != nil && b.send(appID, userID) {
		return
	}
	b.Wake(appID, userID)
}

// Wake wakes this server's subscribers of the user only.
func (b *Broker) Wake(appID, userID int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[key{appID, userID}] {
		wake(s)
	}
}

// WakeAll wakes every subscriber of this server, for when wake-ups may have been missed.
func (b *Broker) WakeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.subs {
		for s := range m {
			wake(s)
		}
	}
}

func wake(s *Sub) {
	select {
	case s.C <- struct{}{}:
	default:
	}
}

// Count returns the number of subscriptions, for metrics.
func (b *Broker) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.subs {
		n += len(m)
	}
	return n
}
