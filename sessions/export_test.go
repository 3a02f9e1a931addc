package sessions

// SetFeedQueue lets tests make a Memory's feeds overflow quickly.
func SetFeedQueue(m *Memory, n int) { m.feedQueue = n }
