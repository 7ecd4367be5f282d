// The business panel of the dashboard, from the web nodes' scrapes (runner_status.cc): every
// web node exports the same global figures from the shared store (app/business.h), so these are
// taken as their max across nodes, never summed; millions_business_events_total is each node's
// own count and is summed. Pure. Thread-safety: a value. Ownership: none.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>

namespace millions::ctl {

struct BusinessTotals {
  double active_day = -1, active_previous_day = -1;          // -1: no node reported yet
  std::map<std::string, double> events_today, events_total;  // by kind
  struct Cohort {
    double users = 0, day1 = -1, day7 = -1;
  };
  std::map<std::string, Cohort> cohorts;  // by cohort_day ("2026-12-03"), oldest first

  // One sample line of a web node's scrape ("name{labels} value"); other lines are ignored.
  void Add(std::string_view line, double value);
  // {"active_day","active_previous_day","events_today":{kind:n},"events_total":{kind:n},
  //  "cohorts":[{"day","users","day1","day7"}]}: null where no node reported; cohorts newest
  // first.
  boost::json::object Json() const;
};

}  // namespace millions::ctl
