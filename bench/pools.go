package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
)

// permutation visits 0 … n-1 once each in a scattered order (i·stride mod n, stride coprime to
// n), so consecutive requests hit users far apart in the store, as real traffic does, rather
// than neighbouring rows a cache would keep warm.
type permutation struct{ n, stride int }

func newPermutation(n int) permutation {
	stride := max(1, int(float64(n)*0.6180339887))
	for gcd(stride, n) != 1 {
		stride++
	}
	return permutation{n: n, stride: stride}
}

func (p permutation) at(i int) int { return int((int64(i%p.n) * int64(p.stride)) % int64(p.n)) }

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// totpPool hands out seeded users with an authenticator for valid verifications. A code
// verifies once (replay protection: the server records the newest step accepted), so each user
// is taken at most once per TOTP step; the users go round in a fixed scattered order, and when
// the one next in turn has already verified in the current step, every user has: the pool is
// drained until the step turns or reset forgets the replay records.
type totpPool struct {
	s      seeded
	gen    otp.TOTP // Digits and Period; Secret per user
	perm   permutation
	cursor atomic.Int64
	last   []atomic.Int64 // by index: the step last verified, -1 none
	resets int
}

func newTOTPPool(s seeded, digits, period int) *totpPool {
	p := &totpPool{s: s, gen: otp.TOTP{Digits: digits, Period: period}, perm: newPermutation(s.totpN),
		last: make([]atomic.Int64, s.totpN)}
	for i := range p.last {
		p.last[i].Store(-1)
	}
	return p
}

func (p *totpPool) totp(id int64) otp.TOTP {
	g := p.gen
	g.Secret = p.s.totpSecret(id)
	return g
}

// take returns the next user whose current code has not verified yet and that code, or false
// when the pool is drained.
func (p *totpPool) take(now time.Time) (int64, string, bool) {
	i := p.perm.at(int(p.cursor.Add(1)-1) % p.s.totpN)
	id := p.s.id(i)
	g := p.totp(id)
	step := g.Step(now)
	old := p.last[i].Load()
	if old >= step || !p.last[i].CompareAndSwap(old, step) {
		return 0, "", false
	}
	return id, g.At(step), true
}

// any returns the next user in the rotation, whatever it has verified.
func (p *totpPool) any(i int) (int64, otp.TOTP) {
	id := p.s.id(p.perm.at(i % p.s.totpN))
	return id, p.totp(id)
}

// reset forgets every replay record of the pool, in the store and here.
func (p *totpPool) reset(ctx context.Context, d *storeDB) error {
	if err := d.resetSteps(ctx, p.s.first, p.s.totpN); err != nil {
		return err
	}
	for i := range p.last {
		p.last[i].Store(-1)
	}
	p.resets++
	return nil
}

// smsPool hands out live SMS codes of the seeded users without an authenticator, each once.
// issue gives the next k users in the rotation a new code (written to the store as sms/{id}
// writes it); take hands them out until they run out.
type smsPool struct {
	first  int64 // users first … first+n-1
	n      int
	perm   permutation
	cursor int // next position in the rotation to issue a code to
	ids    []int64
	codes  []string
	next   atomic.Int64
	issued int
}

func newSMSPool(s seeded) *smsPool {
	n := s.n - s.totpN
	return &smsPool{first: s.id(s.totpN), n: n, perm: newPermutation(n)}
}

func (p *smsPool) user(i int) int64 { return p.first + int64(p.perm.at(i%p.n)) }

// issue replaces the pool's codes with new ones for the next k users (at most all of them).
func (p *smsPool) issue(ctx context.Context, d *storeDB, k int) error {
	k = min(max(k, 1), p.n)
	p.ids = p.ids[:0]
	for range k {
		p.ids = append(p.ids, p.user(p.cursor))
		p.cursor = (p.cursor + 1) % p.n
	}
	codes, err := d.issueCodes(ctx, p.ids, p.first, p.first+int64(p.n))
	if err != nil {
		return err
	}
	p.codes = codes
	p.next.Store(0)
	p.issued += k
	return nil
}

// take returns the next user with a live code and the code, or false when none is left.
func (p *smsPool) take() (int64, string, bool) {
	i := int(p.next.Add(1) - 1)
	if i >= len(p.ids) {
		return 0, "", false
	}
	return p.ids[i], p.codes[i], true
}
