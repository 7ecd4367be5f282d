#include "ctl/business_metrics.h"

#include <algorithm>

namespace millions::ctl {

namespace {

// The value of label `name` in `line`, or empty.
std::string Label(std::string_view line, std::string_view name) {
  std::string key = std::string(name) + "=\"";
  for (size_t pos = line.find(key); pos != std::string_view::npos; pos = line.find(key, pos + 1)) {
    if (pos > 0 && line[pos - 1] != '{' && line[pos - 1] != ',') continue;  // day= in cohort_day=
    size_t start = pos + key.size(), end = line.find('"', start);
    if (end == std::string_view::npos) return "";
    return std::string(line.substr(start, end - start));
  }
  return "";
}

void Max(double* at, double v) { *at = std::max(*at, v); }

}  // namespace

void BusinessTotals::Add(std::string_view line, double value) {
  if (!line.starts_with("millions_business_")) return;
  std::string_view name = line.substr(0, line.find('{'));
  if (name == "millions_business_active_users") {
    std::string w = Label(line, "window");
    if (w == "day") Max(&active_day, value);
    if (w == "previous_day") Max(&active_previous_day, value);
  } else if (name == "millions_business_events_today") {
    std::string kind = Label(line, "kind");
    if (!kind.empty()) Max(&events_today[kind], value);
  } else if (name == "millions_business_events_total") {
    std::string kind = Label(line, "kind");
    if (!kind.empty()) events_total[kind] += value;
  } else if (name == "millions_business_cohort_users") {
    std::string day = Label(line, "cohort_day");
    if (!day.empty()) Max(&cohorts[day].users, value);
  } else if (name == "millions_business_retention_ratio") {
    std::string day = Label(line, "cohort_day"), after = Label(line, "day");
    if (day.empty()) return;
    if (after == "1") Max(&cohorts[day].day1, value);
    if (after == "7") Max(&cohorts[day].day7, value);
  }
}

boost::json::object BusinessTotals::Json() const {
  namespace json = boost::json;
  auto num = [](double v) -> json::value {
    if (v < 0) return nullptr;
    return v;
  };
  json::object today, total;
  for (const auto& [k, v] : events_today) today[k] = v;
  for (const auto& [k, v] : events_total) total[k] = v;
  json::array list;
  for (auto it = cohorts.rbegin(); it != cohorts.rend(); ++it)
    list.push_back(json::object{{"day", it->first},
                                {"users", it->second.users},
                                {"day1", num(it->second.day1)},
                                {"day7", num(it->second.day7)}});
  return {{"active_day", num(active_day)},
          {"active_previous_day", num(active_previous_day)},
          {"events_today", std::move(today)},
          {"events_total", std::move(total)},
          {"cohorts", std::move(list)}};
}

}  // namespace millions::ctl
