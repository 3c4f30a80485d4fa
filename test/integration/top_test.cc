// pollux-top in a real terminal: tmux runs a shell in an 80x24 window, the test types into it
// (send-keys) and reads the screen (capture-pane) while pollux-tgt serves a malloc bdev to
// pollux-perf through a vhost-user-blk controller. Every wait polls the screen up to a
// deadline: no sleep of a fixed time, no timing threshold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "virtio_initiator_config.h"

namespace pollux::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr const char* kTmux = "/usr/bin/tmux";
constexpr const char* kPrompt = "top-test$";
constexpr auto kDeadline = std::chrono::seconds(30);

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The index of the first line that starts with `prefix`, or -1.
int LineStartingWith(const std::string& screen, const std::string& prefix) {
  std::vector<std::string> lines = Lines(screen);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
  }
  return -1;
}

// The index of the first line that contains `text`, or -1.
int LineContaining(const std::string& screen, const std::string& text) {
  std::vector<std::string> lines = Lines(screen);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(text) != std::string::npos) return static_cast<int>(i);
  }
  return -1;
}

// The bdevs view shows Malloc0's reads at a rate (neither "-" nor 0).
bool MallocReads(const std::string& screen) {
  for (const std::string& line : Lines(screen)) {
    std::istringstream fields(line);
    std::string name, type, iops;
    fields >> name >> type >> iops;
    if (name == "Malloc0" && type == "read" && iops != "-" && iops != "0") return true;
  }
  return false;
}

// A tmux server of the test's own (its socket in a temporary folder) with one 80x24 window
// running bash with the prompt "top-test$ ".
class TmuxTerminal {
 public:
  explicit TmuxTerminal(const TempDir& dir) : socket_(dir.File("tmux.sock")) {
    RunResult r =
        Tmux({"-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "env",
              std::string("PS1=") + kPrompt + " ", "TERM=xterm", "bash", "--norc", "--noprofile"});
    started_ = r.exit_code == 0;
    EXPECT_TRUE(started_) << Describe(r);
  }
  ~TmuxTerminal() {
    if (started_) Tmux({"kill-server"});
  }
  TmuxTerminal(const TmuxTerminal&) = delete;
  TmuxTerminal& operator=(const TmuxTerminal&) = delete;

  // Types `text` as it is.
  void Type(const std::string& text) { Tmux({"send-keys", "-l", text}); }
  // Presses a key by tmux's name: Enter, C-c, Up.
  void Press(const std::string& key) { Tmux({"send-keys", key}); }
  std::string Screen() { return Tmux({"capture-pane", "-p"}).out; }

  // Reads the screen until `ready` holds of it or the deadline passes; returns the last screen.
  // A failure prints what was on the screen.
  std::string WaitFor(const std::string& what,
                      const std::function<bool(const std::string&)>& ready) {
    std::string screen;
    for (auto deadline = Clock::now() + kDeadline; Clock::now() < deadline;) {
      screen = Screen();
      if (ready(screen)) return screen;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the screen never showed " << what << "; it shows:\n" << screen;
    return screen;
  }
  std::string WaitForText(const std::string& text) {
    return WaitFor("\"" + text + "\"", [&](const std::string& screen) {
      return screen.find(text) != std::string::npos;
    });
  }
  // The shell's prompt is on the last line that has text: pollux-top is gone and the shell is
  // back on the main screen.
  std::string WaitForPrompt() {
    return WaitFor("the shell's prompt", [](const std::string& screen) {
      std::vector<std::string> lines = Lines(screen);
      while (!lines.empty() && lines.back().find_first_not_of(' ') == std::string::npos) {
        lines.pop_back();
      }
      return !lines.empty() && lines.back().rfind(kPrompt, 0) == 0 &&
             lines.back().find_first_not_of(' ', std::string(kPrompt).size()) == std::string::npos;
    });
  }

 private:
  RunResult Tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {kTmux, "-S", socket_});
    return RunProgram(args, std::chrono::seconds(30));
  }

  std::string socket_;
  bool started_ = false;
};

std::string TargetConfig() {
  return R"({"subsystems": [
    {"subsystem": "bdev", "config": [
      {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 32768, "block_size": 512}}]},
    {"subsystem": "vhost_blk", "config": [
      {"method": "vhost_create_blk_controller",
       "params": {"ctrlr": "vhost.0", "dev_name": "Malloc0", "cpumask": "0x3"}}]}]})";
}

class TopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kTmux)) GTEST_SKIP() << "no tmux (scripts/setup.sh installs it)";
    StartTarget();
  }
  void TearDown() override { StopPerf(); }

  void StartTarget() {
    target_ =
        std::make_unique<Target>(std::vector<std::string>{"-m", "0x3", "-S", dir_.path(), "-c",
                                                          dir_.Write("tgt.json", TargetConfig())},
                                 dir_.File("rpc.sock"));
    ASSERT_TRUE(target_->running()) << target_->Stderr();
  }

  // pollux-perf reading Malloc0 through vhost.0 until stopped; at a low rate and sleeping
  // between I/O, so that it leaves the two cores to the target, the terminal and the test.
  void StartPerf() {
    perf_ = Spawn({POLLUX_PERF_PATH, "-c",
                   dir_.Write("ini.json", VirtioInitiatorConfig(dir_.File("vhost.0"), 1, false)),
                   "-q", "4", "-o", "4k", "-w", "randread", "-t", "600", "-m", "0", "--rate",
                   "2000", "--mode", "interrupt"},
                  dir_.File("perf.out"), dir_.File("perf.err"));
    ASSERT_GT(perf_, 0);
  }
  void StopPerf() {
    if (perf_ <= 0) return;
    kill(perf_, SIGKILL);
    int status = 0;
    waitpid(perf_, &status, 0);
    perf_ = -1;
  }

  std::string TopCommand(const std::string& extra = "") {
    return std::string(POLLUX_TOP_PATH) + " -s " + dir_.File("rpc.sock") + " -d 0.2" + extra;
  }

  TempDir dir_;
  std::unique_ptr<Target> target_;
  pid_t perf_ = -1;
};

// What a user does: look at every view while I/O runs, sort, lose the target and get it
// back, quit.
TEST_F(TopTest, ViewsSortingATargetGoneAndBackAndQuit) {
  StartPerf();
  TmuxTerminal terminal(dir_);
  terminal.Type(TopCommand());
  terminal.Press("Enter");

  // Reactors: one row per core, core 0 first.
  std::string screen = terminal.WaitFor("both reactors", [](const std::string& s) {
    return s.find("[1 Reactors]") != std::string::npos && LineStartingWith(s, "   0 ") > 0 &&
           LineStartingWith(s, "   1 ") > 0;
  });
  EXPECT_LT(LineStartingWith(screen, "   0 "), LineStartingWith(screen, "   1 ")) << screen;
  for (const std::string& line : Lines(screen)) EXPECT_LE(line.size(), 80u) << line;
  // r reverses the order.
  terminal.Type("r");
  terminal.WaitFor("core 1 above core 0", [](const std::string& s) {
    const int one = LineStartingWith(s, "   1 "), zero = LineStartingWith(s, "   0 ");
    return one > 0 && zero > 0 && one < zero;
  });

  // Threads; s five times goes round to the THREAD column, A to Z, and r turns it round.
  terminal.Type("2");
  terminal.WaitFor("the threads", [](const std::string& s) {
    return s.find("[2 Threads]") != std::string::npos && LineStartingWith(s, "app_thread") > 0 &&
           LineStartingWith(s, "vhost.core") > 0;
  });
  terminal.Type("sssss");
  terminal.WaitFor("threads A to Z", [](const std::string& s) {
    return s.find("sort: THREAD A-Z") != std::string::npos &&
           LineStartingWith(s, "app_thread") < LineStartingWith(s, "vhost.core");
  });
  terminal.Type("r");
  terminal.WaitFor("threads Z to A", [](const std::string& s) {
    return s.find("sort: THREAD Z-A") != std::string::npos &&
           LineStartingWith(s, "app_thread") > LineStartingWith(s, "vhost.core");
  });

  // Pollers, with the thread each runs on.
  terminal.Type("3");
  terminal.WaitFor("the pollers", [](const std::string& s) {
    return s.find("[3 Pollers]") != std::string::npos && LineContaining(s, " app_thread ") > 0;
  });

  // Bdevs: Malloc0's reads at a rate.
  terminal.Type("4");
  terminal.WaitFor("Malloc0 reading", [](const std::string& s) {
    return s.find("[4 Bdevs]") != std::string::npos && MallocReads(s);
  });

  // Virtio: the controller's queue serving pollux-perf.
  terminal.Type("5");
  terminal.WaitFor("vhost.0's queue", [](const std::string& s) {
    return s.find("[5 Virtio]") != std::string::npos && LineStartingWith(s, "vhost.0 ") > 0;
  });

  // The target dies: pollux-top says so and stays.
  StopPerf();
  target_.reset();  // SIGKILL
  screen = terminal.WaitForText("is gone");
  EXPECT_THAT(screen, HasSubstr("pollux-top")) << screen;
  EXPECT_THAT(screen, HasSubstr(dir_.File("rpc.sock"))) << screen;

  // A new target on the socket: pollux-top reconnects by itself.
  StartTarget();
  terminal.Type("1");
  terminal.WaitFor("the new target's reactors", [](const std::string& s) {
    return s.find("is gone") == std::string::npos && LineStartingWith(s, "   0 ") > 0;
  });

  // q: the shell's prompt on the main screen, nothing of pollux-top's left.
  terminal.Type("q");
  screen = terminal.WaitForPrompt();
  EXPECT_THAT(screen, ::testing::Not(HasSubstr("q quit"))) << screen;
  EXPECT_THAT(screen, ::testing::Not(HasSubstr("[1 Reactors]"))) << screen;
  terminal.Type("echo exit=$?");
  terminal.Press("Enter");
  terminal.WaitForText("exit=0");
}

// Ctrl-C ends pollux-top through its normal exit: the terminal comes back as it was (echo and
// line editing on), and the exit status says SIGINT.
TEST_F(TopTest, CtrlCRestoresTheTerminal) {
  TmuxTerminal terminal(dir_);
  terminal.Type(TopCommand());
  terminal.Press("Enter");
  terminal.WaitForText("[1 Reactors]");
  terminal.Press("C-c");
  std::string screen = terminal.WaitForPrompt();
  EXPECT_THAT(screen, ::testing::Not(HasSubstr("q quit"))) << screen;
  // Typed text is echoed again (raw mode is off) and the shell reads whole lines.
  terminal.Type("echo exit=$? sum=$((40+2))");
  terminal.Press("Enter");
  terminal.WaitForText("exit=130 sum=42");
}

// A target that is not there from the start: the same line, no crash, q still quits.
TEST_F(TopTest, NoTargetAtAllIsSaidOnScreen) {
  TmuxTerminal terminal(dir_);
  terminal.Type(std::string(POLLUX_TOP_PATH) + " -s " + dir_.File("none.sock") + " -v bdevs");
  terminal.Press("Enter");
  std::string screen = terminal.WaitForText("is gone");
  EXPECT_THAT(screen, HasSubstr("[4 Bdevs]"));
  terminal.Type("q");
  terminal.WaitForPrompt();
}

TEST_F(TopTest, OncePrintsASnapshotWithoutATerminal) {
  StartPerf();
  // Until pollux-perf's reads flow (its start-up takes a moment).
  std::string out;
  for (auto deadline = Clock::now() + kDeadline; Clock::now() < deadline && !MallocReads(out);) {
    RunResult r = RunProgram(
        {POLLUX_TOP_PATH, "-s", dir_.File("rpc.sock"), "--once", "-v", "bdevs", "-d", "0.2"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    out = r.out;
    std::vector<std::string> lines = Lines(out);
    ASSERT_GE(lines.size(), 3u) << out;
    EXPECT_EQ(lines[0].rfind("BDEV", 0), 0u) << out;
    for (const std::string& line : lines) EXPECT_LE(line.size(), 80u) << line;
  }
  EXPECT_TRUE(MallocReads(out)) << out;
  RunResult threads =
      RunProgram({POLLUX_TOP_PATH, "-s", dir_.File("rpc.sock"), "--once", "-v", "threads"});
  ASSERT_EQ(threads.exit_code, 0) << Describe(threads);
  EXPECT_GT(LineStartingWith(threads.out, "app_thread"), 0) << threads.out;
}

TEST_F(TopTest, OnceWithoutATargetFailsClearly) {
  RunResult r = RunProgram({POLLUX_TOP_PATH, "-s", dir_.File("none.sock"), "--once"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("is gone"));
  EXPECT_THAT(r.err, HasSubstr("none.sock"));
}

TEST_F(TopTest, HelpVersionAndBadOptions) {
  RunResult help = RunProgram({POLLUX_TOP_PATH, "--help"});
  EXPECT_EQ(help.exit_code, 0) << Describe(help);
  EXPECT_THAT(help.out, HasSubstr("Usage: pollux-top"));
  EXPECT_THAT(help.out, HasSubstr("/var/tmp/pollux.sock"));
  RunResult version = RunProgram({POLLUX_TOP_PATH, "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, ::testing::StartsWith("pollux-top "));
  for (std::vector<std::string> bad :
       {std::vector<std::string>{"-d", "0"}, std::vector<std::string>{"-v", "cores"},
        std::vector<std::string>{"--turbo"}}) {
    bad.insert(bad.begin(), POLLUX_TOP_PATH);
    RunResult r = RunProgram(bad);
    EXPECT_EQ(r.exit_code, 64) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("pollux-top --help"));
  }
  // Without a terminal and without --once: a clear refusal, not a garbled screen.
  RunResult no_tty = RunProgram({POLLUX_TOP_PATH, "-s", dir_.File("rpc.sock")});
  EXPECT_EQ(no_tty.exit_code, 64) << Describe(no_tty);
  EXPECT_THAT(no_tty.err, HasSubstr("--once"));
}

}  // namespace
}  // namespace pollux::testing
