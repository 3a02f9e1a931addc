package redis

import goredis "github.com/redis/go-redis/v9"

// AddHook adds a go-redis hook to every connection of the store, for instrumentation such as
// counting round trips. Hooks see commands and their arguments: a hook must not log them,
// because arguments include sealed agent messages and hashed keys.
func (s *Store) AddHook(h goredis.Hook) { s.rdb.AddHook(h) }
