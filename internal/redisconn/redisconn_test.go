package redisconn

import "testing"

func TestClient(t *testing.T) {
	if ro, err := (Options{URL: "redis://u:p@h:7000/3"}).Client(); err != nil || ro.Addr != "h:7000" || ro.DB != 3 || ro.Username != "u" {
		t.Errorf("URL: %+v, %v", ro, err)
	}
	if ro, err := (Options{Addr: "h:6379", DB: 2}).Client(); err != nil || ro.Addr != "h:6379" || ro.DB != 2 {
		t.Errorf("Addr: %+v, %v", ro, err)
	}
	for name, o := range map[string]Options{"both": {Addr: "h:1", URL: "redis://h:1"}, "neither": {}, "bad URL": {URL: "http://h"}} {
		if _, err := o.Client(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
