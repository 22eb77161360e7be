// Package live wakes the devices connected to this server (by Server-Sent Events) when an
// approval request of their user changes. A wake-up carries no data: the woken stream reads
// the current state from the store, so a missed or merged wake-up loses nothing.
package live

import "sync"

type key struct{ app, user int64 }

// Broker fans wake-ups out to subscribers, per user. It never blocks a publisher.
type Broker struct {
	mu   sync.Mutex
	subs map[key]map[*Sub]struct{}
}

// Sub is one subscription; C receives a value after one or more publications.
type Sub struct{ C chan struct{} }

// NewBroker returns an empty broker.
func NewBroker() *Broker { return &Broker{subs: map[key]map[*Sub]struct{}{}} }

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

// Publish wakes every subscriber of the user. A subscriber already woken stays woken once.
func (b *Broker) Publish(appID, userID int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[key{appID, userID}] {
		select {
		case s.C <- struct{}{}:
		default:
		}
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
