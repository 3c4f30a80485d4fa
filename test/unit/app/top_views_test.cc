// pollux-top's view models: rates from the difference of two samples, sorting, the percentile
// of an interval from two histogram snapshots, and the number formats.
#include <gtest/gtest.h>

#include "view_models.h"

namespace pollux::top {
namespace {

SamplePair Pair(Json before, double before_s, Json after, double after_s) {
  SamplePair pair;
  pair.previous = MethodSample{std::move(before), before_s};
  pair.current = MethodSample{std::move(after), after_s};
  return pair;
}

SamplePair Only(Json current) {
  SamplePair pair;
  pair.current = MethodSample{std::move(current), 1};
  return pair;
}

// The text of column `column` of each row.
std::vector<std::string> ColumnTexts(const Table& table, size_t column) {
  std::vector<std::string> texts;
  for (const auto& row : table.rows) texts.push_back(row.at(column).text);
  return texts;
}

// Checks row `row`'s cells: {column title, text} pairs.
void ExpectCells(const Table& table, size_t row,
                 const std::vector<std::pair<std::string, std::string>>& expected);

// The text of row `row` in the column titled `title`.
std::string CellAt(const Table& table, size_t row, const std::string& title) {
  for (size_t i = 0; i < table.columns.size(); ++i) {
    if (table.columns[i].title == title) return table.rows.at(row).at(i).text;
  }
  ADD_FAILURE() << "no column " << title;
  return "";
}

void ExpectCells(const Table& table, size_t row,
                 const std::vector<std::pair<std::string, std::string>>& expected) {
  for (const auto& [title, text] : expected) {
    EXPECT_EQ(CellAt(table, row, title), text) << "row " << row << ", column " << title;
  }
}

Json Reactor(int core, uint64_t busy, uint64_t idle, uint64_t sleep, uint64_t wakeups,
             bool sleeping) {
  return {{"core", core},
          {"mode", "interrupt"},
          {"in_interrupt", sleeping},
          {"busy", busy},
          {"idle", idle},
          {"sleep", sleep},
          {"wakeups", wakeups},
          {"lw_threads", Json::array({{{"id", 1}, {"name", "app_thread"}}})}};
}

TEST(TopViews, RatesAndSharesComeFromTheDifferenceBetweenTwoSamples) {
  Json before = {{"reactors", {Reactor(0, 100, 300, 600, 10, false)}}};
  Json after = {{"reactors", {Reactor(0, 400, 600, 1000, 30, true)}}};
  Table table = BuildReactorsView(Pair(before, 10.0, after, 12.0));
  ASSERT_EQ(table.rows.size(), 1u);
  // busy 300 of 1000 ticks, asleep 400 of them; 20 wake-ups in 2 s.
  ExpectCells(table, 0,
              {{"BUSY%", "30.0"},
               {"SLEEP%", "40.0"},
               {"WAKE/S", "10"},
               {"STATE", "sleeping"},
               {"THREAD NAMES", "app_thread"}});
}

TEST(TopViews, WithoutAnEarlierSampleRatesAreDashes) {
  Table table = BuildReactorsView(Only({{"reactors", {Reactor(1, 5, 5, 5, 1, false)}}}));
  ASSERT_EQ(table.rows.size(), 1u);
  ExpectCells(table, 0, {{"BUSY%", "-"}, {"WAKE/S", "-"}, {"STATE", "polling"}});
}

TEST(TopViews, AReactorAsleepAllAlongSleptTheWholeInterval) {
  // Its counters move only when it wakes: no tick counted between the samples.
  Json asleep = {{"reactors", {Reactor(1, 5, 5, 5, 1, true)}}};
  Table table = BuildReactorsView(Pair(asleep, 0, asleep, 1));
  ExpectCells(table, 0, {{"BUSY%", "0.0"}, {"SLEEP%", "100.0"}, {"WAKE/S", "0"}});
}

TEST(TopViews, ACounterThatWentBackIsNoRate) {
  // The target restarted between the samples: no negative rate, no huge one.
  EXPECT_EQ(RatePerSecond(500, 100, 1.0), std::nullopt);
  EXPECT_EQ(RatePerSecond(100, 100, 0.0), std::nullopt);
  EXPECT_EQ(RatePerSecond(100, 350, 0.5), 500.0);
}

TEST(TopViews, ThreadsMatchByIdAndCountMessagesPerSecond) {
  auto thread = [](int id, const char* name, uint64_t messages, uint64_t busy) {
    return Json{{"id", id},
                {"name", name},
                {"core", 1},
                {"busy", busy},
                {"idle", 0},
                {"messages", messages},
                {"poller_runs", 0},
                {"active_pollers_count", 2},
                {"timed_pollers_count", 1},
                {"paused_pollers_count", 0},
                {"parked_pollers_count", 1},
                {"io_channels_count", 3},
                {"moves", 0}};
  };
  Json before = {{"tick_rate", 1000}, {"threads", {thread(1, "a", 10, 0), thread(2, "b", 0, 0)}}};
  // Thread 2 is gone and 3 is new: only 1 has a rate.
  Json after = {{"tick_rate", 1000},
                {"threads", {thread(3, "c", 99, 10), thread(1, "a", 30, 500)}}};
  Table table = BuildThreadsView(Pair(before, 0, after, 1));
  ASSERT_EQ(table.rows.size(), 2u);
  ExpectCells(table, 0, {{"MSGS/S", "-"}});
  // 500 busy ticks of the 1000 in the second between the samples.
  ExpectCells(table, 1, {{"MSGS/S", "20"}, {"BUSY%", "50.0"}, {"POLLERS", "4"}});
}

TEST(TopViews, PollersAreListedWithTheirThreadAndType) {
  Json result = {
      {"tick_rate", 1000},
      {"threads",
       {{{"name", "app_thread"},
         {"id", 1},
         {"active_pollers",
          {{{"name", "rpc"}, {"id", 1}, {"state", "waiting"}, {"run_count", 10}, {"busy_count", 2}},
           {{"name", "ring"},
            {"id", 2},
            {"state", "parked"},
            {"run_count", 4},
            {"busy_count", 0}}}},
         {"timed_pollers",
          {{{"name", "tick"},
            {"id", 3},
            {"state", "waiting"},
            {"run_count", 7},
            {"busy_count", 7},
            {"period_ticks", 100}}}},
         {"paused_pollers", Json::array()}}}}};
  Json later = result;
  later["threads"][0]["active_pollers"][0]["run_count"] = 110;
  later["threads"][0]["active_pollers"][0]["busy_count"] = 12;
  Table table = BuildPollersView(Pair(result, 0, later, 2));
  ASSERT_EQ(table.rows.size(), 3u);
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"rpc", "ring", "tick"}));
  EXPECT_EQ(ColumnTexts(table, 1),
            (std::vector<std::string>{"app_thread", "app_thread", "app_thread"}));
  EXPECT_EQ(ColumnTexts(table, 2), (std::vector<std::string>{"active", "parked", "timed"}));
  ExpectCells(table, 0, {{"RUNS/S", "50"}, {"BUSY/S", "5"}, {"RUNS", "110"}});
}

Json Bdev(const char* name, uint64_t reads, uint64_t read_ticks, Json read_buckets,
          uint64_t writes = 0) {
  return {
      {"name", name},
      {"num_read_ops", reads},
      {"bytes_read", reads * 4096},
      {"read_latency_ticks", read_ticks},
      {"num_write_ops", writes},
      {"bytes_written", writes * 4096},
      {"write_latency_ticks", writes * 10},
      {"num_unmap_ops", 0},
      {"latency_buckets",
       {{"read", std::move(read_buckets)}, {"write", Json::array()}, {"other", Json::array()}}}};
}

TEST(TopViews, BdevIopsThroughputAndLatencyOfTheInterval) {
  // tick_rate 1 MHz: a tick is a microsecond. 1000 reads in 0.5 s of the target's clock.
  Json before = {{"tick_rate", 1000000},
                 {"ticks", 1000000},
                 {"bdevs", {Bdev("Malloc0", 1000, 50000, Json::array({{50, 1000}}))}}};
  Json after = {{"tick_rate", 1000000},
                {"ticks", 1500000},
                {"bdevs",
                 {Bdev("Malloc0", 2000, 50000 + 1000 * 30,
                       Json::array({{20, 980}, {50, 1000}, {400, 20}}))}}};
  Table table = BuildBdevsView(Pair(before, 0, after, 3 /* ignored: ticks win */));
  // read and write; unmap never happened and is left out.
  ASSERT_EQ(table.rows.size(), 2u);
  EXPECT_EQ(ColumnTexts(table, 1), (std::vector<std::string>{"read", "write"}));
  // 2000 reads of 4 KiB per second, 30 us each on average. Of the interval's 1000 reads, 980
  // took up to 20 us and 20 up to 400 us: p99 is 400.
  ExpectCells(table, 0, {{"IOPS", "2000"}, {"MiB/S", "7.8"}, {"AVG US", "30"}, {"P99 US", "400"}});
  ExpectCells(table, 1, {{"IOPS", "0"}, {"AVG US", "-"}});
}

TEST(TopViews, IntervalPercentileSubtractsTheEarlierSnapshot) {
  Json before = Json::array({{10, 100}});
  Json after = Json::array({{10, 100}, {30, 50}, {90, 50}});
  EXPECT_EQ(IntervalPercentile(before, after, 50), 30u);
  EXPECT_EQ(IntervalPercentile(before, after, 99), 90u);
  EXPECT_EQ(IntervalPercentile(after, after, 99), std::nullopt);   // nothing arrived
  EXPECT_EQ(IntervalPercentile(after, before, 99), std::nullopt);  // counts went back
}

TEST(TopViews, VirtioQueuesOfTheTargetAndOfTheInitiator) {
  auto vhost = [](uint64_t requests) {
    return Json::array({{{"ctrlr", "vhost.0"},
                         {"queues",
                          {{{"queue", "vhost.0 queue 1"},
                            {"thread", "vhost.core1"},
                            {"requests", requests},
                            {"kicks", requests / 2},
                            {"interrupts", requests / 4},
                            {"in_flight", 3}}}}}});
  };
  auto initiator = [](uint64_t requests) {
    return Json::array({{{"name", "VirtioBlk0"},
                         {"virtio",
                          {{"queues",
                            {{{"index", 0},
                              {"requests", requests},
                              {"completions", requests - 1},
                              {"kicks", 1},
                              {"interrupt_arms", 2}}}}}}}});
  };
  Table table =
      BuildVirtioView(Pair(vhost(100), 0, vhost(500), 2), Pair(initiator(10), 0, initiator(30), 2));
  ASSERT_EQ(table.rows.size(), 2u);
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"vhost.0", "VirtioBlk0"}));
  EXPECT_EQ(ColumnTexts(table, 2), (std::vector<std::string>{"1", "0"}));
  ExpectCells(table, 0, {{"REQ/S", "200"}, {"KICK/S", "100"}, {"INTR/S", "50"}});
  ExpectCells(table, 1, {{"REQ/S", "10"}, {"INFLT", "1"}});
}

TEST(TopViews, NoControllersLeaveANote) {
  Table table = BuildVirtioView(SamplePair{}, SamplePair{});
  EXPECT_TRUE(table.rows.empty());
  EXPECT_NE(table.empty_note.find("vhost_create_blk_controller"), std::string::npos);
}

Table Numbers(std::vector<std::pair<std::string, std::optional<double>>> rows) {
  Table table;
  table.columns = {{"NAME", 8, false}, {"N", 6, true}};
  for (auto& [name, n] : rows) table.rows.push_back({TextCell(name), QuantityCell(n)});
  return table;
}

TEST(TopViews, NumericColumnsSortLargestFirstAndDashesLast) {
  Table table = Numbers({{"b", 2}, {"a", std::nullopt}, {"c", 30}, {"d", 2}});
  SortTable(table, {1, false});
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"c", "b", "d", "a"}));
  SortTable(table, {1, true});
  // Reversed: smallest first, ties in their earlier order, dashes still last.
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"b", "d", "c", "a"}));
}

TEST(TopViews, TextColumnsSortAToZ) {
  Table table = Numbers({{"vhost", 1}, {"app", 2}, {"perf", 3}});
  SortTable(table, {0, false});
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"app", "perf", "vhost"}));
  SortTable(table, {0, true});
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"vhost", "perf", "app"}));
  SortTable(table, {7, false});  // no such column: unchanged
  EXPECT_EQ(ColumnTexts(table, 0), (std::vector<std::string>{"vhost", "perf", "app"}));
}

TEST(TopViews, QuantitiesFitNarrowColumns) {
  EXPECT_EQ(FormatQuantity(std::nullopt), "-");
  EXPECT_EQ(FormatQuantity(0), "0");
  EXPECT_EQ(FormatQuantity(0.5), "0.5");
  EXPECT_EQ(FormatQuantity(9999), "9999");
  EXPECT_EQ(FormatQuantity(12345), "12.3k");
  EXPECT_EQ(FormatQuantity(4567890), "4.57M");
  EXPECT_EQ(FormatQuantity(12e9), "12.00G");
  EXPECT_EQ(FormatPercent(12.345), "12.3");
}

TEST(TopViews, EveryViewHasNamesAndMethods) {
  for (int i = 0; i < kViewCount; ++i) {
    const auto view = static_cast<ViewKind>(i);
    EXPECT_EQ(ParseViewKind(ViewName(view)), view);
    EXPECT_FALSE(MethodsOf(view).empty());
    Table table = BuildView(view, {});
    EXPECT_LT(DefaultSort(view).column, static_cast<int>(table.columns.size()));
  }
  EXPECT_EQ(ParseViewKind("cores"), std::nullopt);
}

}  // namespace
}  // namespace pollux::top
