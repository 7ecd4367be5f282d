#include "roles/dns/health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "roles/dns/test_util.h"

namespace millions::dns {
namespace {

// Two DCs, a balancer each; region east prefers dc1. The probe answers from `up`, by port.
struct Fixture {
  DnsConfig cfg;
  metrics::Registry reg;
  std::array<std::atomic<bool>, 2> up{true, true};
  std::atomic<int> probes{0};

  Fixture() {
    ZoneConfig& z = cfg.settings.zone;
    z.dcs = {"dc1", "dc2"};
    z.balancers = {{"lb1", "dc1", *ParseAddress("127.0.3.1")},
                   {"lb2", "dc2", *ParseAddress("127.0.4.1")}};
    z.regions = {{"east", {*ParseSubnet("198.18.1.0/24")}, {"dc1", "dc2"}}};
    cfg.settings.fall = 2;
    cfg.settings.rise = 1;
    cfg.checks = {{"127.0.0.1", 1}, {"127.0.0.1", 2}};
  }
  Probe Fake() {
    return [this](const CheckTarget& t, std::chrono::milliseconds) {
      ++probes;
      return up[t.port - 1].load();
    };
  }
};

std::string EastDc(const Health& h) { return h.zone()->chosen_dcs()[0]; }

TEST(DnsHealth, FallRiseAndTheFirstRound) {
  Fixture f;
  f.up[0] = false;
  Health h(f.cfg, f.reg, f.Fake());
  EXPECT_EQ(EastDc(h), "dc1");  // before any check: every balancer answered
  h.Check();                    // the first round decides outright
  EXPECT_EQ(EastDc(h), "dc2");
  EXPECT_EQ(f.probes, 2);
  f.up[0] = true;
  h.Check();  // rise = 1
  EXPECT_EQ(EastDc(h), "dc1");
  f.up[0] = false;
  h.Check();  // one failure: fall = 2 keeps it
  EXPECT_EQ(EastDc(h), "dc1");
  h.Check();
  EXPECT_EQ(EastDc(h), "dc2");
  f.up[1] = false;
  h.Check();
  h.Check();
  EXPECT_TRUE(h.zone()->fail_open());
  std::string metrics = f.reg.Render();
  EXPECT_NE(metrics.find("millions_dns_balancer_up{balancer=\"lb1\",dc=\"dc1\"} 0"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("millions_dns_fail_open 1"), std::string::npos);
  EXPECT_NE(h.StatusJson().find("\"fail_open\":true"), std::string::npos);
}

// Readers answer queries from the published zone on several threads while the checker swaps it:
// every answer is dc1's or dc2's balancer, never a torn one (and TSan sees no race).
TEST(DnsHealth, ReadersWhileTheZoneChanges) {
  Fixture f;
  Health h(f.cfg, f.reg, f.Fake());
  std::atomic<bool> stop{false};
  std::atomic<int> answers{0}, bad{0};
  std::vector<std::thread> readers;
  const std::string q = testing::MakeQuery("www.millions.test", type::kA,
                                           {.edns = true, .ecs = testing::Ecs4(198, 18, 1, 0, 24)});
  Subnet src = *ParseAddress("10.0.0.1");
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      std::string out;
      while (!stop) {
        h.zone()->Respond(q, src, true, &out);
        auto m = ParseMessage(out);
        bool ok = m && m->answer.size() == 1 &&
                  (m->answer[0].rdata == std::string("\x7f\0\3\1", 4) ||
                   m->answer[0].rdata == std::string("\x7f\0\4\1", 4));
        if (!ok) ++bad;
        ++answers;
      }
    });
  for (int i = 0; i < 200; ++i) {
    f.up[0] = i % 4 < 2;
    h.Check();
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad, 0);
  EXPECT_GT(answers, 0);
}

}  // namespace
}  // namespace millions::dns
