package ratelimit

import (
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestKeyed(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		key       int
		at        time.Duration // after t0
		ok        bool
		retry     time.Duration // when refused
		giveBack  bool          // give the key's token back after the step
		afterKeys int           // keys kept after the step; -1 to skip
	}
	tests := []struct {
		name  string
		limit twofold.Limit
		max   int
		steps []step
	}{
		{"N at once, then one per window/N", twofold.Limit{N: 3, Window: time.Minute}, maxKeys, []step{
			{key: 1, ok: true, afterKeys: -1}, {key: 1, ok: true, afterKeys: -1}, {key: 1, ok: true, afterKeys: -1},
			{key: 1, ok: false, retry: 20 * time.Second, afterKeys: -1},
			{key: 1, at: 5 * time.Second, ok: false, retry: 15 * time.Second, afterKeys: -1},
			{key: 1, at: 20 * time.Second, ok: true, afterKeys: -1},
			{key: 1, at: 20 * time.Second, ok: false, retry: 20 * time.Second, afterKeys: -1},
		}},
		{"keys apart", twofold.Limit{N: 1, Window: time.Minute}, maxKeys, []step{
			{key: 1, ok: true, afterKeys: 1}, {key: 2, ok: true, afterKeys: 2}, {key: 1, ok: false, retry: time.Minute, afterKeys: 2},
		}},
		{"a token given back is taken again", twofold.Limit{N: 1, Window: time.Hour}, maxKeys, []step{
			{key: 1, ok: true, giveBack: true, afterKeys: -1}, {key: 1, ok: true, afterKeys: -1},
			{key: 1, ok: false, retry: time.Hour, afterKeys: -1},
		}},
		{"a clock stepped back refills nothing", twofold.Limit{N: 1, Window: time.Minute}, maxKeys, []step{
			{key: 1, at: time.Hour, ok: true, afterKeys: -1}, {key: 1, ok: false, retry: time.Hour + time.Minute, afterKeys: -1},
		}},
		{"full buckets are dropped after a window", twofold.Limit{N: 2, Window: time.Minute}, maxKeys, []step{
			{key: 1, ok: true, afterKeys: 1},
			{key: 2, at: 30 * time.Second, ok: true, afterKeys: 2}, {key: 2, at: 30 * time.Second, ok: true, afterKeys: 2},
			// At 61 s key 1 is full again and dropped; key 2 is not yet.
			{key: 3, at: 61 * time.Second, ok: true, afterKeys: 2},
		}},
		{"at the bound, every key is forgotten", twofold.Limit{N: 1, Window: time.Hour}, 3, []step{
			{key: 1, ok: true, afterKeys: 1}, {key: 2, ok: true, afterKeys: 2}, {key: 3, ok: true, afterKeys: 3},
			{key: 4, ok: true, afterKeys: 1}, {key: 1, ok: true, afterKeys: 2},
		}},
		{"at the bound, full buckets are dropped first", twofold.Limit{N: 1, Window: time.Hour}, 4, []step{
			{key: 1, ok: true, afterKeys: 1}, {key: 2, ok: true, afterKeys: 2}, {key: 3, at: 59 * time.Minute, ok: true, afterKeys: 3},
			{key: 4, at: 59 * time.Minute, ok: true, afterKeys: 4},
			// At 60 m keys 1 and 2 are full again: dropping them leaves half the bound.
			{key: 5, at: time.Hour, ok: true, afterKeys: 3}, {key: 3, at: time.Hour, ok: false, retry: 59 * time.Minute, afterKeys: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New[int](tt.limit)
			b.max = tt.max
			for i, s := range tt.steps {
				ok, retry := b.Take(s.key, t0.Add(s.at))
				if ok != s.ok || !ok && retry.Round(time.Millisecond) != s.retry {
					t.Fatalf("step %d: take = %v, %v; want %v, %v", i+1, ok, retry, s.ok, s.retry)
				}
				if s.giveBack {
					b.GiveBack(s.key)
				}
				if s.afterKeys >= 0 && len(b.full) != s.afterKeys {
					t.Fatalf("step %d: %d keys kept, want %d", i+1, len(b.full), s.afterKeys)
				}
			}
		})
	}
	var off *Keyed[int] = New[int](twofold.Limit{})
	for range 3 {
		if ok, _ := off.Take(1, t0); !ok {
			t.Fatal("a limit that is off refused")
		}
	}
}
