package live

import "testing"

func TestBroker(t *testing.T) {
	b := NewBroker()
	a, cancelA := b.Subscribe(1, 10)
	other, cancelOther := b.Subscribe(1, 11)
	defer cancelOther()
	if b.Count() != 2 {
		t.Fatalf("count %d", b.Count())
	}
	// Many publications while nobody reads merge into one wake-up and never block.
	for range 100 {
		b.Publish(1, 10)
	}
	select {
	case <-a.C:
	default:
		t.Fatal("subscriber not woken")
	}
	select {
	case <-a.C:
		t.Fatal("publications did not merge")
	default:
	}
	select {
	case <-other.C:
		t.Fatal("another user's subscriber woken")
	default:
	}
	b.Publish(2, 10) // same user id, other application
	select {
	case <-a.C:
		t.Fatal("another application's publication woke the subscriber")
	default:
	}
	cancelA()
	b.Publish(1, 10)
	if b.Count() != 1 {
		t.Fatalf("count after cancel %d", b.Count())
	}
}
