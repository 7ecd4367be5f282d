// `millions logs` on fake run dirs: the merge is in time order across files, filters combine,
// engines' lines come only when asked for, and follow mode picks up new lines, new files and
// re-created files.
#include "ctl/logs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace millions::ctl::logs {
namespace {

namespace fs = std::filesystem;

std::string Line(const std::string& ts, const std::string& node, const std::string& role,
                 const std::string& level, const std::string& msg, const std::string& rid = "") {
  std::string s = "{\"ts\":\"" + ts + "\",\"level\":\"" + level + "\",\"node\":\"" + node +
                  "\",\"role\":\"" + role + "\",\"msg\":\"" + msg + "\"";
  if (!rid.empty()) s += ",\"request_id\":\"" + rid + "\",\"trace_id\":\"t-" + rid + "\"";
  return s + "}\n";
}

class LogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("millions-logs-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Append(const std::string& node, const std::string& text) {
    std::ofstream(dir_ / "logs" / (node + ".log"), std::ios::app) << text;
  }
  std::vector<Source> Sources() { return FindSources(dir_.string(), {{"pg1", "patroni"}}); }
  std::vector<std::string> Msgs(const Filter& f, Positions* pos = nullptr) {
    std::vector<std::string> out;
    auto p = Merge(Sources(), f, [&](const Record& r) { out.push_back(r.node + ":" + r.msg); });
    if (pos) *pos = p;
    return out;
  }

  fs::path dir_;
};

TEST_F(LogsTest, MergesFilesInTimeOrder) {
  Append("web1", Line("2026-12-03T08:00:00.100Z", "web1", "web", "info", "a") +
                     Line("2026-12-03T08:00:00.400Z", "web1", "web", "info", "d"));
  Append("lb1", Line("2026-12-03T08:00:00.050Z", "lb1", "lb", "debug", "start") +
                    Line("2026-12-03T08:00:00.200Z", "lb1", "lb", "debug", "b"));
  Append("worker1",
         Line("2026-12-03T08:00:00.300Z", "worker1", "worker", "info", "c") + "not json at all\n");
  EXPECT_EQ(Msgs({}),
            (std::vector<std::string>{"lb1:start", "web1:a", "lb1:b", "worker1:c", "web1:d"}));
}

TEST_F(LogsTest, FiltersCombineWithAnd) {
  Append("web1", Line("2026-12-03T08:00:00.100Z", "web1", "web", "info", "req", "r1") +
                     Line("2026-12-03T08:00:00.200Z", "web1", "web", "warn", "slow", "r2") +
                     Line("2026-12-03T08:00:00.300Z", "web1", "web", "error", "boom", "r1"));
  Append("lb1", Line("2026-12-03T08:00:00.150Z", "lb1", "lb", "debug", "proxied", "r1"));
  Append("worker1", Line("2026-12-03T08:00:01.000Z", "worker1", "worker", "info", "job", "r1"));
  Filter by_rid;
  by_rid.request_id = "r1";
  EXPECT_EQ(Msgs(by_rid),
            (std::vector<std::string>{"web1:req", "lb1:proxied", "web1:boom", "worker1:job"}));
  Filter by_trace;
  by_trace.trace_id = "t-r2";
  EXPECT_EQ(Msgs(by_trace), (std::vector<std::string>{"web1:slow"}));
  Filter rid_and_level = by_rid;
  rid_and_level.level = "warn";  // warn and above
  EXPECT_EQ(Msgs(rid_and_level), (std::vector<std::string>{"web1:boom"}));
  Filter node;
  node.nodes = {"lb1", "worker1"};
  EXPECT_EQ(Msgs(node), (std::vector<std::string>{"lb1:proxied", "worker1:job"}));
  Filter role;
  role.roles = {"web"};
  role.since = "2026-12-03T08:00:00.200Z";
  EXPECT_EQ(Msgs(role), (std::vector<std::string>{"web1:slow", "web1:boom"}));
}

TEST_F(LogsTest, EngineLinesOnlyWhenAskedForWithABestEffortTime) {
  Append("web1", Line("2026-12-03T08:00:01.000Z", "web1", "web", "info", "w"));
  Append("pg1",
         "2026-12-03 08:00:00,500 INFO: no action. I am (pg1), the leader with the lock\n"
         "  a continuation line\n"
         "2026-12-03 08:00:02,000 WARNING: lost the lock\n");
  EXPECT_EQ(Msgs({}), (std::vector<std::string>{"web1:w"}));
  Filter engines;
  engines.engines = true;
  auto all = Msgs(engines);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].substr(0, 4), "pg1:");
  EXPECT_EQ(all[2], "web1:w");  // the continuation line took the time of the line before
  Filter by_role;
  by_role.roles = {"patroni"};
  by_role.level = "warn";
  std::vector<Record> got;
  Merge(Sources(), by_role, [&](const Record& r) { got.push_back(r); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ts, "2026-12-03T08:00:02.000Z");
  EXPECT_FALSE(got[0].json);
  Filter rid;  // a request id never matches an engine's line
  rid.engines = true;
  rid.request_id = "x";
  EXPECT_TRUE(Msgs(rid).empty());
}

TEST_F(LogsTest, FollowReadsNewLinesNewFilesAndRecreatedFiles) {
  Append("web1", Line("2026-12-03T08:00:00.100Z", "web1", "web", "info", "old"));
  Append("web1", "{\"ts\":\"2026-12-03T08:00:00.150Z\",\"level\"");  // half a line
  Positions pos;
  EXPECT_EQ(Msgs({}, &pos), (std::vector<std::string>{"web1:old"}));
  Follower follow({}, pos);
  std::vector<std::string> got;
  auto sink = [&](const Record& r) { got.push_back(r.node + ":" + r.msg); };
  follow.Poll(Sources(), sink);
  EXPECT_TRUE(got.empty());
  // The half line completed; a node added while following; both in time order.
  Append("web1", ":\"info\",\"node\":\"web1\",\"role\":\"web\",\"msg\":\"half\"}\n");
  Append("web2", Line("2026-12-03T08:00:00.120Z", "web2", "web", "info", "new node"));
  follow.Poll(Sources(), sink);
  EXPECT_EQ(got, (std::vector<std::string>{"web2:new node", "web1:half"}));
  got.clear();
  // web2 re-created (rotated, or a new run): read from its start again.
  fs::remove(dir_ / "logs" / "web2.log");
  Append("web2", Line("2026-12-03T08:00:05.000Z", "web2", "web", "info", "again"));
  follow.Poll(Sources(), sink);
  EXPECT_EQ(got, (std::vector<std::string>{"web2:again"}));
}

TEST(LogsParse, TimesAndSince) {
  EXPECT_EQ(FormatTs(*ParseTime("2026-12-03T08:00:00.123456Z")), "2026-12-03T08:00:00.123Z");
  EXPECT_EQ(FormatTs(*ParseTime("2026-12-03T09:00:00+01:00")), "2026-12-03T08:00:00.000Z");
  EXPECT_EQ(FormatTs(*ParseTime("2026/12/03 08:00:00.5 [INF]")), "2026-12-03T08:00:00.500Z");
  EXPECT_FALSE(ParseTime("2026-13-03T08:00:00Z"));
  EXPECT_EQ(FormatTs(*ParseTime("1445/12/03 08:00:00.250")), "1445-12-03T08:00:00.250Z");
  EXPECT_EQ(FormatTs(*ParseTime("0566-12-03T08:00:00Z")), "0566-12-03T08:00:00.000Z");
  EXPECT_FALSE(ParseTime("yesterday"));
  int64_t now = *ParseTime("2026-12-03T08:00:00Z");
  EXPECT_EQ(ParseSince("90s", now), "2026-12-03T07:58:30.000Z");
  EXPECT_EQ(ParseSince("2h", now), "2026-12-03T06:00:00.000Z");
  EXPECT_EQ(ParseSince("2026-12-01T00:00:00Z", now), "2026-12-01T00:00:00.000Z");
  EXPECT_FALSE(ParseSince("10x", now));
  EXPECT_FALSE(ParseSince(std::string(40, '9') + "d", now));
  EXPECT_FALSE(ParseSince("", now));
  // NATS and Redis lines carry their own time.
  Source nats{"", "nats1", "nats"};
  auto n = Parse("[123] 2026/12/03 08:00:00.250000 [WRN] slow consumer", nats, "");
  EXPECT_EQ(n->ts, "2026-12-03T08:00:00.250Z");
  EXPECT_EQ(n->level, "warn");
  auto r = Parse("77:M 03 Dec 2026 08:00:01.750 * Ready to accept connections", nats, "");
  EXPECT_EQ(r->ts, "2026-12-03T08:00:01.750Z");
}

TEST(LogsParse, ReadableShowsTimeNodeLevelMsgAndFields) {
  auto r = Parse(
      "{\"ts\":\"2026-12-03T08:00:00.100Z\",\"level\":\"info\",\"node\":\"web1\",\"role\":\"web\","
      "\"msg\":\"request\",\"request_id\":\"r1\",\"route\":\"/api/photos\",\"status\":201,"
      "\"note\":\"a b\"}",
      {"", "web1", ""}, "");
  ASSERT_TRUE(r && r->json);
  EXPECT_EQ(Readable(*r),
            "2026-12-03T08:00:00.100Z web1       info  request request_id=r1 route=/api/photos "
            "status=201 note=\"a b\"");
}

}  // namespace
}  // namespace millions::ctl::logs
