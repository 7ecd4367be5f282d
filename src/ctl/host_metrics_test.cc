// Host metrics over a fake /proc: one process' figures from stat, status, fd and io; a node's
// process tree summed (Patroni and its PostgreSQL), other processes left out; fields /proc does
// not give (io of another user's process) left out rather than read as 0; the exported text.
#include "ctl/host_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace millions::ctl {
namespace {

namespace fs = std::filesystem;

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("fake_proc_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    fs::create_directories(root_ / "self");  // not a pid: skipped
  }
  void TearDown() override { fs::remove_all(root_); }

  // utime, stime, cutime, cstime in ticks; rss in kB; `io` -1: unreadable (no file).
  void Add(int pid, int ppid, const std::string& comm, long utime, long stime, long cutime,
           long cstime, long rss_kb, int fds, long written) {
    fs::path d = root_ / std::to_string(pid);
    fs::create_directories(d / "fd");
    std::ofstream(d / "stat") << pid << " (" << comm << ") S " << ppid
                              << " 1 1 0 -1 4194560 100 0 0 0 " << utime << " " << stime << " "
                              << cutime << " " << cstime << " 20 0 1 0 12345 1000 50\n";
    std::ofstream(d / "status") << "Name:\t" << comm << "\nVmPeak:\t 999 kB\nVmRSS:\t " << rss_kb
                                << " kB\nThreads:\t1\n";
    for (int i = 0; i < fds; ++i) std::ofstream(d / "fd" / std::to_string(i)) << "";
    if (written >= 0)
      std::ofstream(d / "io") << "rchar: 10\nwchar: 20\nread_bytes: 4096\nwrite_bytes: " << written
                              << "\ncancelled_write_bytes: 0\n";
  }
  std::string root() const { return root_.string(); }

  fs::path root_;
};

TEST_F(FakeProc, OneProcess) {
  Add(42, 1, "millions serve (web)", 150, 50, 0, 0, 2048, 3, 8192);
  auto s = ReadProc(root(), 42, 100);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ppid, 1);  // counted after the last ')', though comm holds one
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 2.0);
  EXPECT_EQ(s->rss_bytes, 2048 * 1024);
  EXPECT_EQ(s->open_files, 3);
  EXPECT_EQ(s->written_bytes, 8192);
  EXPECT_FALSE(ReadProc(root(), 43, 100));
}

TEST_F(FakeProc, TreesSummedPerNode) {
  Add(100, 1, "patroni", 100, 100, 0, 0, 1000, 5, -1);  // io unreadable
  Add(101, 100, "postgres", 300, 100, 200, 0, 3000, 7, 4096);
  Add(102, 101, "postgres: checkpointer", 0, 100, 0, 0, 500, 2, 1024);
  Add(200, 1, "redis-server", 50, 50, 0, 0, 800, 4, 0);
  Add(300, 1, "unrelated", 999, 999, 0, 0, 99999, 99, 99999);
  std::vector<HostNode> nodes{{"pg1", "patroni", "dc1", 100},
                              {"redis1", "redis", "dc2", 200},
                              {"gone", "web", "dc1", 400},
                              {"never", "web", "dc1", 0}};
  auto m = CollectHostMetrics(root(), nodes, 100);
  ASSERT_EQ(m.size(), 2u);  // no process for "gone" or "never"
  EXPECT_EQ(m[0].node.name, "pg1");
  EXPECT_EQ(m[0].processes, 3);
  EXPECT_DOUBLE_EQ(m[0].total.cpu_seconds, (200 + 600 + 100) / 100.0);
  EXPECT_EQ(m[0].total.rss_bytes, (1000 + 3000 + 500) * 1024);
  EXPECT_EQ(m[0].total.open_files, 14);
  EXPECT_EQ(m[0].total.written_bytes, 4096 + 1024);  // patroni's unreadable io adds nothing
  EXPECT_EQ(m[1].processes, 1);
  EXPECT_DOUBLE_EQ(m[1].total.cpu_seconds, 1.0);

  metrics::Registry reg;
  reg.AddCollector([&m](metrics::Families* out) { AddHostFamilies(out, m); });
  std::string text = reg.Render();
  for (const char* want :
       {"# TYPE millions_node_cpu_seconds_total counter\n",
        "millions_node_cpu_seconds_total{node=\"pg1\",role=\"patroni\",dc=\"dc1\"} 9\n",
        "millions_node_resident_bytes{node=\"redis1\",role=\"redis\",dc=\"dc2\"} 819200\n",
        "millions_node_open_files{node=\"pg1\",role=\"patroni\",dc=\"dc1\"} 14\n",
        "# TYPE millions_node_disk_written_bytes_total counter\n",
        "millions_node_disk_written_bytes_total{node=\"pg1\",role=\"patroni\",dc=\"dc1\"} 5120\n"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\nin:\n" << text;
  EXPECT_EQ(text.find("unrelated"), std::string::npos);
}

TEST_F(FakeProc, UnreadableIoIsLeftOut) {
  Add(7, 1, "etcd", 1, 1, 0, 0, 10, 1, -1);
  auto m = CollectHostMetrics(root(), {{"etcd", "etcd", "dc1", 7}}, 100);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].total.written_bytes, -1);
  metrics::Registry reg;
  reg.AddCollector([&m](metrics::Families* out) { AddHostFamilies(out, m); });
  std::string text = reg.Render();
  EXPECT_EQ(text.find("millions_node_disk_written_bytes_total{"), std::string::npos) << text;
  EXPECT_NE(text.find("millions_node_open_files{node=\"etcd\""), std::string::npos) << text;
}

TEST(RealProc, OurOwnProcess) {
  auto s = ReadProc("/proc", getpid(), sysconf(_SC_CLK_TCK));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ppid, getppid());
  EXPECT_GT(s->rss_bytes, 0);
  EXPECT_GE(s->open_files, 3);
  EXPECT_GE(s->written_bytes, 0);
}

}  // namespace
}  // namespace millions::ctl
