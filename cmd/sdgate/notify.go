package main

import (
	"net"
)

// sdNotify tells systemd (Type=notify) our state through $NOTIFY_SOCKET.
// Without the variable it does nothing: not run by systemd.
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	if socket[0] == '@' { // abstract socket namespace
		socket = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
