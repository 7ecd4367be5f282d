#include "roles/dns/health.h"

#include <boost/json.hpp>
#include <thread>

#include "core/http_client.h"
#include "core/log.h"

namespace millions::dns {

Probe HttpProbe(std::string path) {
  return [path](const CheckTarget& t, std::chrono::milliseconds timeout) {
    http::FetchRequest r;
    r.host = t.host;
    r.port = t.port;
    r.target = path;
    r.timeout = timeout;
    auto res = http::Fetch(r);
    return res.ok() && res->status == 200;
  };
}

namespace {

std::string Address(const Subnet& ip) {
  std::string s = FormatSubnet(ip);
  return s.substr(0, s.find('/'));
}

}  // namespace

Health::Health(const DnsConfig& cfg, metrics::Registry& reg, Probe probe)
    : cfg_(cfg), probe_(std::move(probe)) {
  const auto& bs = cfg_.settings.zone.balancers;
  up_.assign(bs.size(), true);  // until the first round: every balancer answered
  streak_.assign(bs.size(), 0);
  for (const auto& b : bs)
    up_gauges_.push_back(&reg.GetGauge("millions_dns_balancer_up",
                                       "1 when the DNS server's checks pass for this balancer",
                                       {{"balancer", b.name}, {"dc", b.dc}}));
  changes_ = &reg.GetCounter("millions_dns_zone_changes_total",
                             "New answers published after a balancer's health changed", {});
  std::lock_guard lock(mu_);
  Publish();
  reg.AddCollector([this](metrics::Families* out) {
    auto z = zone();
    auto w = metrics::AddGauge(out, "millions_dns_region_dc",
                               "1 for the DC whose balancers each region is answered with");
    const auto& regions = cfg_.settings.zone.regions;
    for (size_t i = 0; i < regions.size(); ++i)
      if (!z->chosen_dcs()[i].empty())
        w.Add({{"region", regions[i].name}, {"dc", z->chosen_dcs()[i]}}, 1);
    metrics::AddGauge(out, "millions_dns_fail_open",
                      "1 while no balancer passes its checks and every one is answered")
        .Add({}, z->fail_open() ? 1 : 0);
  });
}

void Health::Check() {
  const auto& s = cfg_.settings;
  const size_t n = cfg_.checks.size();
  std::vector<char> ok(n, 0);
  std::vector<std::thread> threads;
  threads.reserve(n);
  const std::chrono::milliseconds timeout(s.check_timeout_ms);
  for (size_t i = 0; i < n; ++i)
    threads.emplace_back([&, i] { ok[i] = probe_(cfg_.checks[i], timeout) ? 1 : 0; });
  for (auto& t : threads) t.join();

  std::lock_guard lock(mu_);
  bool changed = false;
  for (size_t i = 0; i < n; ++i) {
    int& st = streak_[i];
    st = ok[i] ? (st > 0 ? st + 1 : 1) : (st < 0 ? st - 1 : -1);
    bool verdict = up_[i];
    if (first_)
      verdict = ok[i];
    else if (up_[i] && st <= -s.fall)
      verdict = false;
    else if (!up_[i] && st >= s.rise)
      verdict = true;
    if (verdict != up_[i]) {
      up_[i] = verdict;
      changed = true;
      const auto& b = s.zone.balancers[i];
      log::Write(verdict ? log::Level::kInfo : log::Level::kWarn, {},
                 verdict ? "balancer up" : "balancer down", {{"balancer", b.name}, {"dc", b.dc}});
    }
  }
  first_ = false;
  if (changed) {
    Publish();
    changes_->Inc();
  }
}

void Health::Publish() {
  for (size_t i = 0; i < up_.size(); ++i) up_gauges_[i]->Set(up_[i] ? 1 : 0);
  auto z = std::make_shared<const Zone>(cfg_.settings.zone, up_);
  const auto& regions = cfg_.settings.zone.regions;
  for (size_t i = 0; i < regions.size(); ++i)
    log::Info(
        "region answer",
        {{"region", regions[i].name}, {"dc", z->chosen_dcs()[i]}, {"fail_open", z->fail_open()}});
  std::lock_guard lock(zone_mu_);
  zone_ = std::move(z);
}

std::string Health::StatusJson() const {
  boost::json::array balancers, regions;
  auto z = zone();
  {
    std::lock_guard lock(mu_);
    const auto& bs = cfg_.settings.zone.balancers;
    for (size_t i = 0; i < bs.size(); ++i)
      balancers.push_back(boost::json::object{{"name", bs[i].name},
                                              {"dc", bs[i].dc},
                                              {"address", Address(bs[i].ip)},
                                              {"up", bool(up_[i])}});
  }
  const auto& rs = cfg_.settings.zone.regions;
  for (size_t i = 0; i < rs.size(); ++i)
    regions.push_back(boost::json::object{{"name", rs[i].name}, {"dc", z->chosen_dcs()[i]}});
  boost::json::object root{{"zone", cfg_.settings.zone.zone},
                           {"fail_open", z->fail_open()},
                           {"balancers", std::move(balancers)},
                           {"regions", std::move(regions)},
                           {"default_dc", z->chosen_dcs().back()}};
  return boost::json::serialize(root);
}

}  // namespace millions::dns
