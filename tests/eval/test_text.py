from genlab.eval.text import edit_distance


def test_edit_distance_on_words_and_characters():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("ask not what".split(), "ask what".split()) == 1
    assert edit_distance([], ["a", "b"]) == 2 and edit_distance("abc", "") == 3 and edit_distance("", "") == 0
