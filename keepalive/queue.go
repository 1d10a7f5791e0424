package keepalive

// ring is the kernel's FIFO of pending events: a growable circular buffer.
type ring struct {
	buf  []*Context
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(c *Context) {
	if r.n == len(r.buf) {
		r.resize(max(16, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = c
	r.n++
}

func (r *ring) pop() *Context {
	c := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if len(r.buf) > 1024 && r.n < len(r.buf)/8 {
		r.resize(len(r.buf) / 4)
	}
	return c
}

// resize moves the queue into a buffer of size n, a power of two >= r.n.
func (r *ring) resize(n int) {
	buf := make([]*Context, n)
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

// each calls f on every queued event, oldest first.
func (r *ring) each(f func(*Context)) {
	for i := range r.n {
		f(r.buf[(r.head+i)&(len(r.buf)-1)])
	}
}

// extract removes the events for which match is true, keeping the order of
// the rest, and returns them in order.
func (r *ring) extract(match func(*Context) bool) []*Context {
	var out []*Context
	kept := 0
	for i := range r.n {
		c := r.buf[(r.head+i)&(len(r.buf)-1)]
		if match(c) {
			out = append(out, c)
			continue
		}
		r.buf[(r.head+kept)&(len(r.buf)-1)] = c
		kept++
	}
	for i := kept; i < r.n; i++ {
		r.buf[(r.head+i)&(len(r.buf)-1)] = nil
	}
	r.n = kept
	return out
}
