#include "roles/dns/zone.h"

#include <algorithm>

namespace millions::dns {
namespace {

const std::string kQuestionName("\xc0\x0c", 2);  // a pointer to the question's name

std::string Wire(std::string_view name) {
  std::string w;
  AppendName(name, &w);
  return w;
}

std::string Rdata(const Subnet& ip) {
  return std::string(reinterpret_cast<const char*>(ip.address.data()), ip.family == 1 ? 4 : 16);
}

void AddAddress(const Subnet& ip, const std::string& owner, uint32_t ttl, std::vector<Record>* a,
                std::vector<Record>* aaaa) {
  Record r = MakeRecord(owner, ip.family == 1 ? type::kA : type::kAaaa, ttl, Rdata(ip));
  auto& to = ip.family == 1 ? *a : *aaaa;
  for (const auto& have : to)
    if (have.wire == r.wire) return;  // two balancers on one address: answered once
  to.push_back(std::move(r));
}

}  // namespace

Zone::Zone(const ZoneConfig& cfg, const std::vector<bool>& healthy)
    : cfg_(cfg), geo_([&] {
        std::vector<std::vector<Subnet>> s;
        for (const auto& r : cfg.regions) s.push_back(r.subnets);
        return s;
      }()) {
  const std::string apex = Wire(cfg_.zone);
  apex_is_service_ = std::find(cfg_.service_labels.begin(), cfg_.service_labels.end(), "@") !=
                     cfg_.service_labels.end();
  std::string first_ns =
      cfg_.name_servers.empty() ? cfg_.zone : cfg_.name_servers.front().label + "." + cfg_.zone;
  soa_.push_back(MakeRecord(apex, type::kSoa, cfg_.ns_ttl,
                            RdataSoa(first_ns, "hostmaster." + cfg_.zone, cfg_.serial, 3600, 600,
                                     86400, cfg_.negative_ttl)));
  // RFC 2308: a negative answer's SOA is cached for the lesser of its TTL and its minimum.
  any_soa_ = soa_;
  for (const auto& ns : cfg_.name_servers) {
    std::string host = ns.label + "." + cfg_.zone;
    ns_.push_back(MakeRecord(apex, type::kNs, cfg_.ns_ttl, Wire(host)));
    Choice c;
    AddAddress(ns.ip, Wire(host), cfg_.ns_ttl, &glue_, &glue_);
    AddAddress(ns.ip, kQuestionName, cfg_.ns_ttl, &c.a, &c.aaaa);
    ns_addresses_.push_back(std::move(c));
  }

  // Which DCs have a healthy balancer.
  auto has_healthy = [&](const std::string& dc) {
    for (size_t i = 0; i < cfg_.balancers.size(); ++i)
      if (cfg_.balancers[i].dc == dc && i < healthy.size() && healthy[i]) return true;
    return false;
  };
  fail_open_ = std::none_of(healthy.begin(), healthy.end(), [](bool h) { return h; });
  auto build = [&](const std::vector<std::string>& prefer) {
    Choice c;
    std::string chosen;
    if (fail_open_) {
      std::vector<std::string> order = prefer;
      for (const auto& dc : cfg_.dcs)
        if (std::find(order.begin(), order.end(), dc) == order.end()) order.push_back(dc);
      for (const auto& dc : order)
        for (const auto& b : cfg_.balancers)
          if (b.dc == dc) AddAddress(b.ip, kQuestionName, cfg_.ttl, &c.a, &c.aaaa);
    } else {
      for (const auto& dc : prefer)
        if (has_healthy(dc)) {
          chosen = dc;
          break;
        }
      // None of the region's DCs: the first other DC (in the topology's order) that has one.
      if (chosen.empty())
        for (const auto& dc : cfg_.dcs)
          if (has_healthy(dc)) {
            chosen = dc;
            break;
          }
      for (size_t i = 0; i < cfg_.balancers.size(); ++i)
        if (cfg_.balancers[i].dc == chosen && healthy[i])
          AddAddress(cfg_.balancers[i].ip, kQuestionName, cfg_.ttl, &c.a, &c.aaaa);
    }
    choices_.push_back(std::move(c));
    chosen_dc_.push_back(chosen);
  };
  for (const auto& r : cfg_.regions) build(r.dcs);
  build(cfg_.dcs);  // clients in no region: the DCs in the topology's order
}

Zone::Kind Zone::Classify(std::string_view name, bool* service, int* ns_index) const {
  *service = false;
  const std::string& zone = cfg_.zone;
  if (name == zone) {
    *service = apex_is_service_;
    return Kind::kApex;
  }
  if (name.size() <= zone.size() + 1 || name.substr(name.size() - zone.size()) != zone ||
      name[name.size() - zone.size() - 1] != '.')
    return Kind::kOutside;
  std::string_view label = name.substr(0, name.size() - zone.size() - 1);
  for (const auto& s : cfg_.service_labels)
    if (s == label) {
      *service = true;
      return Kind::kService;
    }
  for (size_t i = 0; i < cfg_.name_servers.size(); ++i)
    if (cfg_.name_servers[i].label == label) {
      *ns_index = static_cast<int>(i);
      return Kind::kNameServer;
    }
  return Kind::kNone;
}

Outcome Zone::Respond(std::string_view wire, const Subnet& source, bool udp,
                      std::string* out) const {
  Outcome o;
  ParseResult p = ParseQuery(wire);
  ResponseSpec spec;
  spec.udp_size = cfg_.udp_size;
  if (!p.query) {
    if (p.error == ParseError::kShort || p.error == ParseError::kResponse) {
      o.answered = false;
      out->clear();
      return o;
    }
    spec.rcode = p.error == ParseError::kNotImp ? Rcode::kNotImp : Rcode::kFormErr;
    spec.aa = false;
    spec.edns = p.has_edns;
    o.rcode = spec.rcode;
    // NOTIMP echoes no question (it was not read); FORMERR echoes it when it was readable.
    std::string_view question = p.error == ParseError::kNotImp ? "" : p.question_wire;
    BuildResponse(p.id, p.opcode, p.rd, false, question, spec, udp ? 512 : 65535, out);
    return o;
  }
  const Query& q = *p.query;
  o.qtype = q.qtype;
  size_t limit = 65535;
  if (udp) limit = q.edns ? std::min<size_t>(q.edns->udp_size, cfg_.udp_size) : 512;
  spec.edns = q.edns.has_value();
  auto finish = [&](Rcode rc) {
    spec.rcode = rc;
    o.rcode = rc;
    o.truncated = BuildResponse(q.id, 0, q.rd, q.cd, q.question_wire, spec, limit, out);
    return o;
  };
  if (q.edns && q.edns->version > 0) {
    spec.aa = false;
    return finish(Rcode::kBadVers);  // RFC 6891 6.1.3: we speak version 0 only
  }
  // The client: its Client Subnet when it sent one, else the source address.
  // A source prefix of 0 says the resolver withholds its client's address (RFC 7871 7.1.2):
  // the resolver's own address decides, and the answer's scope is 0.
  GeoMatch geo;
  bool use_ecs = q.edns && q.edns->ecs && q.edns->ecs->source_prefix > 0;
  if (q.edns && q.edns->ecs) {
    spec.ecs = *q.edns->ecs;
    spec.ecs->scope_prefix = 0;  // only answers that depend on the client narrow the scope
  }
  if (use_ecs) {
    const ClientSubnet& e = *q.edns->ecs;
    geo = geo_.Lookup(e.family, e.address, e.source_prefix);
  } else {
    geo = geo_.Lookup(source.family, source.address, source.prefix);
  }
  o.region = geo.region;
  if (q.qclass != kClassIn) {
    spec.aa = false;
    return finish(Rcode::kRefused);
  }
  bool service = false;
  int ns_index = -1;
  Kind kind = Classify(q.name(), &service, &ns_index);
  if (kind == Kind::kOutside) {
    spec.aa = false;
    return finish(Rcode::kRefused);
  }
  if (q.qtype == type::kAxfr || q.qtype == type::kIxfr) {
    spec.aa = false;
    return finish(Rcode::kRefused);  // no zone transfers: every server reads the topology
  }
  if (kind == Kind::kNone) {
    spec.authority = soa_;
    return finish(Rcode::kNxDomain);
  }
  if (kind == Kind::kApex && q.qtype == type::kSoa) {
    spec.answer = soa_;
    spec.authority = ns_;
    return finish(Rcode::kNoError);
  }
  if (kind == Kind::kApex && q.qtype == type::kNs) {
    spec.answer = ns_;
    spec.additional = glue_;
    return finish(Rcode::kNoError);
  }
  if (kind == Kind::kApex && q.qtype == type::kAny) {
    spec.answer = any_soa_;  // RFC 8482: one record set, not everything
    return finish(Rcode::kNoError);
  }
  if (service && (q.qtype == type::kA || q.qtype == type::kAaaa || q.qtype == type::kAny)) {
    size_t idx = geo.region >= 0 ? static_cast<size_t>(geo.region) : choices_.size() - 1;
    const Choice& c = choices_[idx];
    const auto& set = q.qtype == type::kAaaa ? c.aaaa : c.a;
    if (use_ecs) spec.ecs->scope_prefix = geo.scope;
    if (!set.empty()) {
      spec.answer = set;
      return finish(Rcode::kNoError);
    }
  } else if (kind == Kind::kNameServer && (q.qtype == type::kA || q.qtype == type::kAaaa)) {
    const Choice& c = ns_addresses_[ns_index];
    const auto& set = q.qtype == type::kAaaa ? c.aaaa : c.a;
    if (!set.empty()) {
      spec.answer = set;
      return finish(Rcode::kNoError);
    }
  }
  spec.authority = soa_;  // NODATA: the name exists, not with this type
  return finish(Rcode::kNoError);
}

}  // namespace millions::dns
