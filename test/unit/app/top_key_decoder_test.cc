// pollux-top's keys, escape sequences included, whole or split across reads.
#include <gtest/gtest.h>

#include "key_decoder.h"

namespace pollux::top {
namespace {

TEST(TopKeyDecoder, PlainKeys) {
  KeyDecoder decoder;
  EXPECT_EQ(decoder.Feed("q"), (std::vector<Key>{{KeyAction::kQuit}}));
  EXPECT_EQ(decoder.Feed("3\tsSr"), (std::vector<Key>{{KeyAction::kShowView, 2},
                                                      {KeyAction::kNextView},
                                                      {KeyAction::kNextSortColumn},
                                                      {KeyAction::kPreviousSortColumn},
                                                      {KeyAction::kReverseSort}}));
  EXPECT_TRUE(decoder.Feed("x7 0").size() == 1);  // only the space (page down) means something
}

TEST(TopKeyDecoder, EscapeSequences) {
  KeyDecoder decoder;
  EXPECT_EQ(decoder.Feed("\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~\x1b[H\x1b[4~\x1b[Z"),
            (std::vector<Key>{{KeyAction::kScrollUp},
                              {KeyAction::kScrollDown},
                              {KeyAction::kScrollUp},
                              {KeyAction::kPageUp},
                              {KeyAction::kPageDown},
                              {KeyAction::kScrollHome},
                              {KeyAction::kScrollEnd},
                              {KeyAction::kPreviousView}}));
  // Unknown sequences (F1, a mouse report's start) are skipped, the keys after them kept.
  EXPECT_EQ(decoder.Feed("\x1b[11~q"), (std::vector<Key>{{KeyAction::kQuit}}));
}

TEST(TopKeyDecoder, ASequenceSplitAcrossReads) {
  KeyDecoder decoder;
  EXPECT_TRUE(decoder.Feed("\x1b").empty());
  EXPECT_TRUE(decoder.Feed("[").empty());
  EXPECT_TRUE(decoder.Feed("6").empty());
  EXPECT_EQ(decoder.Feed("~q"), (std::vector<Key>{{KeyAction::kPageDown}, {KeyAction::kQuit}}));
}

TEST(TopKeyDecoder, EscapeThenAKeyIsTheKey) {
  KeyDecoder decoder;
  EXPECT_EQ(decoder.Feed("\x1bq"), (std::vector<Key>{{KeyAction::kQuit}}));
}

}  // namespace
}  // namespace pollux::top
