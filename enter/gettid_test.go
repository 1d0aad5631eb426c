package enter

import "golang.org/x/sys/unix"

func unixGettid() int { return unix.Gettid() }
