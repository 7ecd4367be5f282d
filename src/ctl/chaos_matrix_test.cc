// The pure parts of the ledger and the chaos matrix: lost and duplicated writes over a made-up
// record, write gaps, fault names, health and targets read from a runner's status.
#include "ctl/chaos_matrix.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/env.h"
#include "ctl/ledger.h"

namespace millions::ctl {
namespace {

namespace json = boost::json;

LedgerRecord TwoWriters() {
  LedgerRecord r;
  r.acks = {{0, "11", "a-w0-1", 1.0}, {0, "12", "a-w0-2", 1.1}, {1, "21", "a-w1-1", 1.2}};
  return r;
}

LedgerObserved AllThere() {
  LedgerObserved o;
  o.readable = {"a-w0-1", "a-w0-2", "a-w1-1"};
  o.listed = {{{"a-w0-1", 1}, {"a-w0-2", 1}}, {{"a-w1-1", 1}}};
  o.listed_ok = {true, true};
  return o;
}

TEST(Tally, EveryAcknowledgedWriteThereOnceIsClean) {
  LedgerVerdict v = Tally(TwoWriters(), AllThere());
  EXPECT_EQ(v.acknowledged, 3);
  EXPECT_EQ(v.lost, 0);
  EXPECT_EQ(v.duplicated, 0);
}

TEST(Tally, UnreadableIsLost) {
  LedgerObserved o = AllThere();
  o.readable.erase("a-w0-2");
  LedgerVerdict v = Tally(TwoWriters(), o);
  EXPECT_EQ(v.lost, 1);
  ASSERT_EQ(v.lost_captions.size(), 1u);
  EXPECT_EQ(v.lost_captions[0], "a-w0-2");
}

TEST(Tally, ReadableButMissingFromItsOwnersListIsLost) {
  LedgerObserved o = AllThere();
  o.listed[1].clear();
  EXPECT_EQ(Tally(TwoWriters(), o).lost, 1);
  // Listed under the other writer does not count.
  o.listed[0]["a-w1-1"] = 1;
  EXPECT_EQ(Tally(TwoWriters(), o).lost, 1);
}

TEST(Tally, ACaptionListedTwiceIsDuplicated) {
  LedgerObserved o = AllThere();
  o.listed[0]["a-w0-1"] = 2;
  LedgerVerdict v = Tally(TwoWriters(), o);
  EXPECT_EQ(v.duplicated, 1);
  EXPECT_EQ(v.lost, 0);
}

TEST(Tally, AmbiguousMayExistOnceButNotTwice) {
  LedgerRecord r = TwoWriters();
  r.ambiguous = {{0, "a-w0-3"}, {1, "a-w1-2"}};
  LedgerObserved o = AllThere();
  o.listed[0]["a-w0-3"] = 1;
  LedgerVerdict v = Tally(r, o);
  EXPECT_EQ(v.ambiguous, 2);
  EXPECT_EQ(v.ambiguous_written, 1);
  EXPECT_EQ(v.duplicated, 0);
  o.listed[1]["a-w1-2"] = 2;
  EXPECT_EQ(Tally(r, o).duplicated, 1);
}

TEST(Tally, NoListAtAllLosesEverything) {
  LedgerObserved o;
  o.readable = AllThere().readable;
  EXPECT_EQ(Tally(TwoWriters(), o).lost, 3);
}

// Two jobs accepted on two photos, a third photo's request refused (503), a fourth unanswered.
LedgerRecord WithJobs() {
  LedgerRecord r = TwoWriters();
  r.jobs = {{0, "11", "101", 1.0, 1'800'000'000'000}, {1, "21", "201", 1.2, 1'800'000'000'200}};
  r.refused_job_photos = {"12"};
  r.ambiguous_job_photos = {"13"};
  return r;
}

LedgerObserved JobsDone() {
  LedgerObserved o = AllThere();
  o.jobs["101"] = {"done", "", 1'800'000'000'500};  // 0.5 s
  o.jobs["201"] = {"done", "", 1'800'000'002'200};  // 2.0 s
  o.versions["11"] = {{"101", 1}};
  o.versions["21"] = {{"201", 1}};
  o.versions["12"] = {};
  o.versions["13"] = {};
  return o;
}

TEST(TallyJobs, EveryAcceptedJobDoneOnceIsClean) {
  JobVerdict v = TallyJobs(WithJobs(), JobsDone());
  EXPECT_EQ(v.accepted, 2);
  EXPECT_EQ(v.lost, 0);
  EXPECT_EQ(v.duplicated, 0);
  EXPECT_EQ(v.ambiguous, 1);
  EXPECT_NEAR(v.p99_s, 2.0, 1e-9);
  // No jobs at all: nothing to say.
  JobVerdict none = TallyJobs(TwoWriters(), AllThere());
  EXPECT_EQ(none.accepted + none.lost + none.duplicated, 0);
  EXPECT_EQ(none.p99_s, 0);
}

TEST(TallyJobs, NeverDoneIsLost) {
  for (std::string status : {"queued", "running", "failed", ""}) {
    LedgerObserved o = JobsDone();
    o.jobs["201"] = {status, status == "failed" ? "boom" : "", -1};
    JobVerdict v = TallyJobs(WithJobs(), o);
    EXPECT_EQ(v.lost, 1) << status;
    ASSERT_EQ(v.lost_jobs.size(), 1u);
    EXPECT_EQ(v.lost_jobs[0].rfind("201 (", 0), 0u) << v.lost_jobs[0];
  }
  // Never read at all (a phantom job the service does not know).
  LedgerObserved o = JobsDone();
  o.jobs.erase("101");
  EXPECT_EQ(TallyJobs(WithJobs(), o).lost, 1);
}

TEST(TallyJobs, DoneWithoutItsVersionIsLost) {
  LedgerObserved o = JobsDone();
  o.versions["21"] = {};
  EXPECT_EQ(TallyJobs(WithJobs(), o).lost, 1);
  o.versions.erase("21");
  EXPECT_EQ(TallyJobs(WithJobs(), o).lost, 1);
}

TEST(TallyJobs, TwoVersionsOfOneJobAreADuplicate) {
  LedgerObserved o = JobsDone();
  o.versions["11"]["101"] = 2;
  JobVerdict v = TallyJobs(WithJobs(), o);
  EXPECT_EQ(v.duplicated, 1);
  EXPECT_EQ(v.lost, 0);
  ASSERT_EQ(v.duplicated_jobs.size(), 1u);
  EXPECT_EQ(v.duplicated_jobs[0], "101 (2 versions)");
}

TEST(TallyJobs, ARefusedJobMayNotRunAnUnansweredOneAtMostOnce) {
  LedgerObserved o = JobsDone();
  o.versions["12"] = {{"777", 1}};  // refused with a 4xx, yet it ran
  EXPECT_EQ(TallyJobs(WithJobs(), o).duplicated, 1);
  // Answered 503 (a publish whose acknowledgement was lost may still run): once is counted
  // apart, twice is a duplicate.
  LedgerRecord r = WithJobs();
  r.unavailable_job_photos = {"14"};
  o = JobsDone();
  o.versions["14"] = {};
  JobVerdict v = TallyJobs(r, o);
  EXPECT_EQ(v.ran_after_5xx + v.duplicated, 0);
  o.versions["14"] = {{"779", 1}};
  v = TallyJobs(r, o);
  EXPECT_EQ(v.ran_after_5xx, 1);
  EXPECT_EQ(v.duplicated, 0);
  o.versions["14"] = {{"779", 2}};
  v = TallyJobs(r, o);
  EXPECT_EQ(v.ran_after_5xx, 1);
  EXPECT_EQ(v.duplicated, 1);
  o = JobsDone();
  o.versions["13"] = {{"778", 1}};  // unanswered: it may have been accepted
  EXPECT_EQ(TallyJobs(WithJobs(), o).duplicated, 0);
  o.versions["13"] = {{"778", 2}};
  EXPECT_EQ(TallyJobs(WithJobs(), o).duplicated, 1);
  // A version of some other job on a photo with an accepted one.
  o = JobsDone();
  o.versions["11"]["999"] = 1;
  EXPECT_EQ(TallyJobs(WithJobs(), o).duplicated, 1);
}

TEST(TallyJobs, P99OverTheJobsDone) {
  LedgerRecord r;
  LedgerObserved o;
  for (int i = 0; i < 100; ++i) {
    std::string id = std::to_string(1000 + i), photo = std::to_string(i);
    r.jobs.push_back({0, photo, id, 0, 1'000'000});
    o.jobs[id] = {"done", "", 1'000'000 + (i + 1) * 10};  // 10 ms .. 1000 ms
    o.versions[photo] = {{id, 1}};
  }
  EXPECT_NEAR(TallyJobs(r, o).p99_s, 1.0, 1e-9);
  // A finished_at before the accept (clocks): zero, not negative.
  o.jobs["1000"].finished_wall_ms = 0;
  EXPECT_GE(TallyJobs(r, o).p99_s, 0);
}

TEST(Rfc3339, AsTheServiceWritesIt) {
  EXPECT_EQ(ParseRfc3339Ms(FormatRfc3339(1'800'000'000'123)), 1'800'000'000'123);
  EXPECT_EQ(ParseRfc3339Ms("1970-01-01T00:00:01.002Z"), 1002);
  EXPECT_EQ(ParseRfc3339Ms(""), -1);
  EXPECT_EQ(ParseRfc3339Ms("2026-01-02T03:04:05Z"), -1);
  EXPECT_EQ(ParseRfc3339Ms("2026-01-02T03:04:05.678+01"), -1);
}

TEST(Gaps, TheGapSpanningTheFault) {
  // Acks every 0.1 s, none between 5.05 and 9.0; the fault at 5.1, healthy at 9.5.
  std::vector<double> t;
  for (double x = 0; x < 5.05; x += 0.1) t.push_back(x);
  for (double x = 9.0; x < 12; x += 0.1) t.push_back(x);
  WriteGaps g = ComputeGaps(t, 5.1, 9.5, 12);
  EXPECT_NEAR(g.fault_gap_s, 4.0, 1e-6);
  EXPECT_NEAR(g.max_gap_s, 4.0, 1e-6);
}

TEST(Gaps, AnOutageAfterTheFaultStartsCounts) {
  // The fault at 2.0 but writes go on until 4.0 (a lock not yet expired), then stop until 8.0.
  std::vector<double> t = {1.0, 1.5, 2.5, 3.0, 4.0, 8.0, 8.1};
  WriteGaps g = ComputeGaps(t, 2.0, 8.0, 9);
  EXPECT_NEAR(g.fault_gap_s, 4.0, 1e-9);
}

TEST(Gaps, AGapOutsideTheFaultIsOnlyTheOverallMaximum) {
  std::vector<double> t = {0.0, 3.0, 3.1, 6.0, 6.1, 6.2, 20.0};
  WriteGaps g = ComputeGaps(t, 5.0, 6.0, 20.0);
  EXPECT_NEAR(g.fault_gap_s, 2.9, 1e-9);  // 3.1 -> 6.0
  EXPECT_NEAR(g.max_gap_s, 13.8, 1e-9);   // 6.2 -> 20.0, after recovery
}

TEST(Gaps, NoAckAfterTheFaultRunsToTheEnd) {
  WriteGaps g = ComputeGaps({0.5, 1.0}, 2.0, -1, 30.0);
  EXPECT_NEAR(g.fault_gap_s, 29.0, 1e-9);
  g = ComputeGaps({}, 2.0, -1, 30.0);
  EXPECT_NEAR(g.fault_gap_s, 28.0, 1e-9);
}

TEST(Gaps, UnsortedInput) {
  WriteGaps g = ComputeGaps({3.0, 1.0, 2.0, 6.0}, 2.5, 6.0, 7.0);
  EXPECT_NEAR(g.fault_gap_s, 3.0, 1e-9);
}

TEST(LoopbackUrl, OnlyLoopbackHttp) {
  auto hp = ParseLoopbackUrl("http://127.0.0.1:8080/");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, 8080);
  EXPECT_TRUE(ParseLoopbackUrl("http://127.0.1.2:81").ok());
  EXPECT_FALSE(ParseLoopbackUrl("http://10.0.0.1:80/").ok());
  EXPECT_FALSE(ParseLoopbackUrl("https://127.0.0.1:8443/").ok());
  EXPECT_FALSE(ParseLoopbackUrl("http://example.com/").ok());
  EXPECT_FALSE(ParseLoopbackUrl("http://127.0.0.1:99999/").ok());
}

TEST(Faults, NamesAndAll) {
  auto f = ParseFaults("kill:web, pause:redis,restart:lb,kill:web");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 3u);
  EXPECT_EQ((*f)[0].Name(), "kill:web");
  EXPECT_EQ((*f)[1].Name(), "pause:redis");
  EXPECT_EQ((*f)[2].Name(), "restart:lb");
  auto all = ParseFaults("all");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), FaultRoles().size() * 3);
  EXPECT_EQ(ParseFaults("stop:db-host")->front().Name(), "pause:db-host");
  EXPECT_EQ(ParseFaults("none")->front().Name(), "none");
  // The queue's roles.
  auto q = ParseFaults("kill:nats,pause:nats,restart:nats,kill:worker,pause:worker");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->size(), 5u);
  EXPECT_EQ((*q)[4].Name(), "pause:worker");
  int queue_rows = 0;
  for (const auto& f : *all) queue_rows += f.role == "nats" || f.role == "worker";
  EXPECT_EQ(queue_rows, 6);
  auto e = ParseFaults("kill:edge,pause:edge,restart:edge");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0].Name(), "kill:edge");
}

TEST(Faults, BadNamesAreRefused) {
  EXPECT_FALSE(ParseFaults("kill:nothing").ok());
  EXPECT_FALSE(ParseFaults("smash:web").ok());
  EXPECT_FALSE(ParseFaults("web").ok());
  EXPECT_FALSE(ParseFaults("").ok());
  EXPECT_NE(ParseFaults("kill:wbe").error().message.find("kill:wbe"), std::string::npos);
}

json::value StatusWith(const std::string& pg1_role, const std::string& pg2_role,
                       const std::string& web_state = "running") {
  return json::parse(R"({"nodes":[
    {"name":"etcd1","role":"etcd","state":"running"},
    {"name":"etcd2","role":"etcd","state":"running"},
    {"name":"pg1","role":"patroni","address":"127.0.0.1:28008","state":"running"},
    {"name":"pg1-pg","role":"postgres","db_role":")" +
                     pg1_role + R"(","state":"running"},
    {"name":"pg2","role":"patroni","address":"127.0.0.1:28009","state":"running"},
    {"name":"pg2-pg","role":"postgres","db_role":")" +
                     pg2_role + R"(","state":"running"},
    {"name":"redis1","role":"redis","state":"running"},
    {"name":"web1","role":"web","state":")" +
                     web_state + R"("},
    {"name":"lb1","role":"lb","state":"running"}],
    "endpoints":{"public":"http://127.0.0.1:8080/"}})");
}

TEST(Health, AllRunningAndOnePrimary) {
  EXPECT_TRUE(HealthOf(StatusWith("replica", "primary")).healthy);
  Health h = HealthOf(StatusWith("primary", "primary"));
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.waiting_on, "2 primaries");
  EXPECT_FALSE(HealthOf(StatusWith("replica", "replica")).healthy);
  h = HealthOf(StatusWith("replica", "primary", "starting"));
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.waiting_on, "web1 starting");
  EXPECT_FALSE(HealthOf(json::parse("{}")).healthy);
}

TEST(Health, KilledNodesMustRunUnderANewPid) {
  json::value st = json::parse(R"({"nodes":[
    {"name":"web1","role":"web","state":"running","pid":100},
    {"name":"pg1","role":"patroni","state":"running","pid":200},
    {"name":"pg1-pg","role":"postgres","db_role":"primary","state":"running","pid":300}]})");
  EXPECT_EQ(PidsOf(st, {"web1", "pg1-pg", "nope"}),
            (std::map<std::string, int64_t>{{"web1", 100}, {"pg1-pg", 300}, {"nope", 0}}));
  EXPECT_TRUE(HealthOf(st, {{"web1", 99}}).healthy);
  Health h = HealthOf(st, {{"web1", 100}});
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.waiting_on, "web1 to run again");
  EXPECT_FALSE(HealthOf(st, {{"gone", 5}}).healthy);
}

TEST(Targets, WhatAFaultKills) {
  FaultTarget web{{"web1"}, "", ""};
  EXPECT_EQ(RestartedNodes({"kill", "web"}, web), std::vector<std::string>{"web1"});
  EXPECT_EQ(RestartedNodes({"restart", "web"}, web), std::vector<std::string>{"web1"});
  EXPECT_TRUE(RestartedNodes({"pause", "web"}, web).empty());
  FaultTarget db{{"pg2"}, "host", "127.0.0.1:1"};
  EXPECT_EQ(RestartedNodes({"kill", "db-host"}, db), (std::vector<std::string>{"pg2", "pg2-pg"}));
  EXPECT_EQ(RestartedNodes({"restart", "postgres-primary"}, db),
            std::vector<std::string>{"pg2-pg"});
  EXPECT_EQ(RestartedNodes({"kill", "patroni-leader"}, db), std::vector<std::string>{"pg2"});
  EXPECT_TRUE(RestartedNodes({"kill", "runner"}, FaultTarget{}).empty());
}

TEST(Targets, FromTheStatus) {
  json::value st = StatusWith("replica", "primary");
  auto t = ResolveTarget({"kill", "patroni-leader"}, st);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->nodes, std::vector<std::string>{"pg2"});
  EXPECT_EQ(t->part, "patroni");
  EXPECT_EQ(t->rest, "127.0.0.1:28009");
  EXPECT_EQ(ResolveTarget({"kill", "patroni-replica"}, st)->nodes, std::vector<std::string>{"pg1"});
  EXPECT_EQ(ResolveTarget({"pause", "postgres-primary"}, st)->part, "postgres");
  EXPECT_EQ(ResolveTarget({"pause", "db-host"}, st)->part, "host");
  EXPECT_EQ(ResolveTarget({"kill", "etcd-member"}, st)->nodes, std::vector<std::string>{"etcd1"});
  EXPECT_EQ(ResolveTarget({"kill", "etcd-all"}, st)->nodes,
            (std::vector<std::string>{"etcd1", "etcd2"}));
  EXPECT_EQ(ResolveTarget({"kill", "web"}, st)->nodes, std::vector<std::string>{"web1"});
  EXPECT_EQ(ResolveTarget({"kill", "lb"}, st)->part, "");
  EXPECT_TRUE(ResolveTarget({"kill", "runner"}, st)->nodes.empty());
  // No primary: nothing to aim at.
  EXPECT_FALSE(ResolveTarget({"kill", "db-host"}, StatusWith("replica", "replica")).ok());
  json::value no_lb = json::parse(R"({"nodes":[{"name":"web1","role":"web"}]})");
  EXPECT_FALSE(ResolveTarget({"kill", "lb"}, no_lb).ok());
  // No queue in this topology: the rows are skipped with a note.
  auto no_nats = ResolveTarget({"kill", "nats"}, st);
  ASSERT_FALSE(no_nats.ok());
  EXPECT_EQ(no_nats.error().message, "no nats node in this topology");
  EXPECT_FALSE(ResolveTarget({"pause", "worker"}, st).ok());
  json::value queue = json::parse(R"({"nodes":[
    {"name":"nats1","role":"nats"},{"name":"worker1","role":"worker"},
    {"name":"worker2","role":"worker"}]})");
  EXPECT_EQ(ResolveTarget({"restart", "nats"}, queue)->nodes, std::vector<std::string>{"nats1"});
  EXPECT_EQ(ResolveTarget({"kill", "worker"}, queue)->nodes, std::vector<std::string>{"worker1"});
  EXPECT_EQ(RestartedNodes({"kill", "worker"}, *ResolveTarget({"kill", "worker"}, queue)),
            std::vector<std::string>{"worker1"});
  // The edge: the first edge node; a topology without one skips the row.
  EXPECT_FALSE(ResolveTarget({"kill", "edge"}, st).ok());
  json::value edges = json::parse(R"({"nodes":[
    {"name":"edge1","role":"edge"},{"name":"edge2","role":"edge"}]})");
  EXPECT_EQ(ResolveTarget({"kill", "edge"}, edges)->nodes, std::vector<std::string>{"edge1"});
  EXPECT_EQ(RestartedNodes({"restart", "edge"}, *ResolveTarget({"kill", "edge"}, edges)),
            std::vector<std::string>{"edge1"});
}

TEST(Rows, ExitCodeAndJson) {
  MatrixRow ok;
  ok.fault = "kill:web";
  ok.health_s = 2.5;
  EXPECT_EQ(MatrixExitCode({ok}), 0);
  MatrixRow lost = ok;
  lost.lost = 1;
  EXPECT_EQ(MatrixExitCode({ok, lost}), 1);
  MatrixRow dup = ok;
  dup.duplicated = 2;
  EXPECT_EQ(MatrixExitCode({dup}), 1);
  MatrixRow skipped;
  skipped.skipped = true;
  EXPECT_EQ(MatrixExitCode({ok, skipped}), 0);
  MatrixRow failed;
  failed.failed = true;
  EXPECT_EQ(MatrixExitCode({failed}), 1);
  MatrixRow job_lost = ok;
  job_lost.jobs_accepted = 5;
  job_lost.jobs_lost = 1;
  EXPECT_EQ(MatrixExitCode({job_lost}), 1);
  MatrixRow job_dup = ok;
  job_dup.jobs_duplicated = 1;
  EXPECT_EQ(MatrixExitCode({job_dup}), 1);
  MatrixRow jobs_fine = ok;
  jobs_fine.jobs_accepted = 7;
  jobs_fine.job_p99_s = 0.25;
  EXPECT_EQ(MatrixExitCode({jobs_fine}), 0);
  json::object jo = RowJson(job_lost);
  EXPECT_EQ(jo.at("jobs_accepted").as_int64(), 5);
  EXPECT_EQ(jo.at("jobs_lost").as_int64(), 1);
  EXPECT_EQ(jo.at("jobs_duplicated").as_int64(), 0);
  EXPECT_TRUE(jo.contains("job_p99_s"));
  EXPECT_NE(TableHeader().find("JLOST"), std::string::npos);
  EXPECT_NE(TableLine(jobs_fine).find("0.25"), std::string::npos);
  json::object o = RowJson(ok);
  EXPECT_EQ(o.at("fault").as_string(), "kill:web");
  EXPECT_DOUBLE_EQ(o.at("health_s").as_double(), 2.5);
  EXPECT_TRUE(RowJson(MatrixRow{}).at("health_s").is_null());
  EXPECT_NE(TableLine(ok).find("kill:web"), std::string::npos);
}

}  // namespace
}  // namespace millions::ctl
