package flag

import "sync"

// gate is the closing lifecycle the handlers share: it admits calls until it
// is shut; enter fails with ErrClosed after that, and shut waits for the
// calls admitted before it. shut reports whether this call shut the gate, so
// that Close does its work once and a second Close returns nil.
type gate struct {
	mu     sync.Mutex
	closed bool
	active sync.WaitGroup
}

// enter admits a call; every successful enter needs a leave.
func (g *gate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.active.Add(1)
	return nil
}

func (g *gate) leave() { g.active.Done() }

// shut refuses new calls, then waits for the admitted ones. It returns false
// (at once) when the gate was already shut.
func (g *gate) shut() bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	g.mu.Unlock()
	g.active.Wait()
	return true
}

// isShut reports whether shut was called.
func (g *gate) isShut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
