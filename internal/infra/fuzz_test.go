package infra

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hcp-dev/hcp/internal/agentapi"
)

const sampleInventory = `{"hostname":"host-1","memory":{"physicalBytes":25769803776,"usableBytes":25276502016},
"cpu":{"architecture":"amd64","modelName":"AMD EPYC","count":2,"flags":["sse2"]},
"interfaces":[{"name":"eth0","macAddress":"02:fc:00:00:00:01","ipV4Addresses":["192.0.2.2/24"],"hasCarrier":true,"mtu":1400}],
"disks":[{"id":"/dev/vda","name":"vda","path":"/dev/vda","driveType":"HDD","sizeBytes":274877906944,"installationEligibility":{"eligible":true}}],
"boot":{"currentBootMode":"bios"},"systemVendor":{"manufacturer":"QEMU","virtual":true}}`

func TestDecodeInventory(t *testing.T) {
	inv, err := DecodeInventory([]byte(sampleInventory))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Cpu.Count != 2 || len(inv.Disks) != 1 || inv.Interfaces[0].IPV4Addresses[0] != "192.0.2.2/24" {
		t.Fatalf("decoded %+v", inv)
	}
	for body, want := range map[string]string{
		`{"hostname":"h","cpu":{"count":-1}}`:          "inventory.cpu.count",
		`{"hostname":"h","bogus":1}`:                   `unknown field "bogus"`,
		`{"hostname":"h"} {"x":1}`:                     "data after the JSON object",
		`{"disks":[{"name":"a","sizeBytes":-5}]}`:      "inventory.disks[0].sizeBytes",
		`{"hostname":` + strings.Repeat(`"a`, 1) + `}`: "inventory",
		`[]`: "inventory",
	} {
		if _, err := DecodeInventory([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %q", body, err, want)
		}
	}
	many := `{"disks":[` + strings.TrimSuffix(strings.Repeat(`{"name":"d"},`, agentapi.MaxDisks+1), ",") + `]}`
	if _, err := DecodeInventory([]byte(many)); err == nil || !strings.Contains(err.Error(), "inventory.disks: more than") {
		t.Errorf("too many disks: %v", err)
	}
}

func TestDecodeBodyLimitsAndFields(t *testing.T) {
	for body, want := range map[string]string{
		`{"host_id":"x","extra":true}`:                            `unknown field "extra"`,
		`{"host_id":`:                                             "body:",
		`{"host_id":"x"}{"host_id":"y"}`:                          "data after the JSON object",
		`{"host_id":"` + strings.Repeat("a", 20000) + `"}`:        "larger than",
		`{"discovery_agent_version":5,"host_id":"x"}`:             "discovery_agent_version",
		`{"host_id":"c748ff1a-3073-43e5-b4e8-d23256877396"}` + "": "",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		var p agentapi.HostCreateParams
		ok := decode(rec, req, agentapi.MaxSmallBodyBytes, &p)
		if want == "" {
			if !ok {
				t.Errorf("valid body refused: %s", rec.Body.String())
			}
			continue
		}
		var e agentapi.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if ok || rec.Code != http.StatusBadRequest || !strings.Contains(e.Reason, want) {
			t.Errorf("%.40s: ok=%v code=%d reason=%q, want 400 naming %q", body, ok, rec.Code, e.Reason, want)
		}
	}
}

// FuzzDecodeInventory feeds arbitrary bytes to the inventory decoder: it must
// never panic, and whatever it accepts must pass the schema's limits.
func FuzzDecodeInventory(f *testing.F) {
	f.Add([]byte(sampleInventory))
	f.Add([]byte(`{"disks":[{"sizeBytes":-1}]}`))
	f.Add([]byte(`{"interfaces":[{"name":"x","ipV4Addresses":["a","b"]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := DecodeInventory(b)
		if err != nil {
			return
		}
		if err := agentapi.ValidateInventory(inv); err != nil {
			t.Fatalf("accepted an inventory that breaks the limits: %v", err)
		}
		if _, err := json.Marshal(inv); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzStepReply feeds arbitrary bodies to the step reply decoding the handler
// does: a 400 or a reply, never a panic, and the body limit always holds.
func FuzzStepReply(f *testing.F) {
	good, _ := json.Marshal(agentapi.StepReply{StepType: "inventory", StepID: "inventory-1", Output: sampleInventory})
	f.Add(good)
	f.Add([]byte(`{"step_type":"inventory","output":"{\"cpu\":{\"count\":-3}}"}`))
	f.Add([]byte(`{"step_type":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(b))
		var rep agentapi.StepReply
		if !decode(rec, req, agentapi.MaxBodyBytes, &rep) {
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("refused with %d", rec.Code)
			}
			return
		}
		if len(b) > agentapi.MaxBodyBytes {
			t.Fatalf("accepted a %d-byte body", len(b))
		}
		if rep.StepType == agentapi.StepInventory {
			_, _ = DecodeInventory([]byte(rep.Output))
		}
	})
}
