"""Splitting by image: ImageKFold equals KFold without groups and keeps
groups in one fold with KFold's fold sizes; the Stanford protocol helpers;
the hold-out split used for early stopping."""

import os
import tarfile

import numpy as np
import pytest
from sklearn.model_selection import (GridSearchCV, KFold, check_cv,
                                     cross_val_score)

from skrcnn.metrics import mean_iou_scorer, pixel_accuracy
from skrcnn.model_selection import (STANFORD_DUPLICATE_PAIRS, ImageKFold,
                                    canonical_stanford_split,
                                    stanford_duplicate_groups, stanford_folds,
                                    train_validation_split)
from dummies import MeanColourSegmenter, colour_pixel_scenes as make_scenes

STANFORD_ARCHIVE = os.environ.get(
    "SKRCNN_STANFORD_ARCHIVE",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                 "iccv09Data.tar.gz"))


def stanford_like_names():
    """715 image stems holding the six duplicate names, in no sorted order."""
    duplicates = [name for pair in STANFORD_DUPLICATE_PAIRS for name in pair]
    names = [f"{i:07d}" for i in range(0, 2 * 709, 2)] + duplicates
    order = np.random.default_rng(42).permutation(len(names))
    return [names[i] for i in order]


def splits(cv, X, groups=None):
    return [(train.tolist(), test.tolist())
            for train, test in cv.split(X, groups=groups)]


def check_partition(folds, n_images):
    """Each image in exactly one test fold; train = the complement."""
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n_images))
    for train, test in folds:
        np.testing.assert_array_equal(
            np.sort(np.concatenate([train, test])), np.arange(n_images))
        assert list(train) == sorted(train) and list(test) == sorted(test)


def assert_groups_together(folds, groups):
    groups = np.asarray(groups)
    for _, test in folds:
        inside = set(groups[test])
        assert not inside & set(groups[np.setdiff1d(np.arange(groups.size),
                                                    test)])


# ================================================================ ImageKFold

@pytest.mark.parametrize("n_images, n_splits", [(10, 5), (715, 5), (23, 4),
                                                (7, 7), (30, 2)])
@pytest.mark.parametrize("random_state", [0, 1, 123])
def test_equals_kfold_without_groups(n_images, n_splits, random_state):
    X = list(range(n_images))
    expected = splits(KFold(n_splits, shuffle=True,
                            random_state=random_state), X)
    cv = ImageKFold(n_splits, shuffle=True, random_state=random_state)
    assert splits(cv, X) == expected
    # groups that never straddle change nothing, e.g. all distinct
    assert splits(cv, X, groups=np.arange(n_images)[::-1]) == expected


def test_equals_kfold_unshuffled():
    X = list(range(11))
    expected = splits(KFold(3), X)
    assert splits(ImageKFold(3, shuffle=False), X) == expected
    # random_state is ignored without shuffle (KFold would refuse it)
    assert splits(ImageKFold(3, shuffle=False, random_state=5), X) == expected


def test_defaults():
    cv = ImageKFold()
    assert (cv.n_splits, cv.shuffle, cv.random_state) == (5, True, 0)
    assert cv.get_n_splits() == 5
    assert repr(cv) == "ImageKFold(n_splits=5, random_state=0, shuffle=True)"
    assert check_cv(cv) is cv


@pytest.mark.parametrize("seed", range(8))
def test_groups_never_straddle_and_sizes_are_kfolds(seed):
    rng = np.random.default_rng(seed)
    n_images = int(rng.integers(20, 80))
    groups = np.arange(n_images)
    # a few groups of 2 to 4 images (duplicates, near-duplicates)
    for _ in range(4):
        members = rng.choice(n_images, size=int(rng.integers(2, 5)),
                             replace=False)
        groups[members] = groups[members[0]]
    groups = [f"g{g}" for g in groups]  # any hashable labels
    n_splits = int(rng.integers(2, 6))
    cv = ImageKFold(n_splits, random_state=seed)
    folds = list(cv.split(np.zeros((n_images, 1)), groups=groups))
    check_partition(folds, n_images)
    assert_groups_together(folds, groups)
    kfold = list(KFold(n_splits, shuffle=True, random_state=seed).split(
        np.zeros((n_images, 1))))
    assert ([len(test) for _, test in folds]
            == [len(test) for _, test in kfold])


def test_stanford_like_715_images_with_three_pairs():
    names = stanford_like_names()
    groups = stanford_duplicate_groups(names)
    assert len(set(groups)) == 712
    straddling = 0
    for random_state in range(6):
        cv = ImageKFold(5, random_state=random_state)
        folds = list(cv.split(names, groups=groups))
        check_partition(folds, 715)
        assert_groups_together(folds, groups)
        assert [(len(a), len(b)) for a, b in folds] == [(572, 143)] * 5
        # only the images moved for the pairs differ from KFold: for each
        # pair split by KFold, one member and one swapped image
        plain = ImageKFold(5, random_state=random_state).fold_assignment(
            names)
        fixed = cv.fold_assignment(names, groups)
        split_pairs = sum(len(set(plain[groups == g])) > 1
                          for g in set(groups))
        assert np.count_nonzero(plain != fixed) == 2 * split_pairs
        straddling += split_pairs
    assert straddling > 0  # the test exercised the repair


def test_one_fold_per_group_member_count():
    # a group of 3 split 2 / 1 goes to the fold holding 2 of its members
    X = np.zeros((10, 1))
    plain = ImageKFold(2, random_state=0).fold_assignment(X)
    members = [np.flatnonzero(plain == 0)[:2][0],
               np.flatnonzero(plain == 0)[:2][1],
               np.flatnonzero(plain == 1)[0]]
    groups = np.arange(10)
    groups[members] = 99
    fixed = ImageKFold(2, random_state=0).fold_assignment(X, groups)
    assert set(fixed[members]) == {0}
    assert np.count_nonzero(fixed != plain) == 2


def test_a_group_too_big_for_its_folds_goes_to_a_fold_without_members():
    """7 images in 3 folds of 3 / 2 / 2; a group of 3 spread over the two
    small folds fits in neither (too few ungrouped images there), but the
    fold of 3 ungrouped images can take it whole."""
    X = np.zeros((7, 1))
    cv = ImageKFold(3, random_state=2)
    plain = cv.fold_assignment(X)
    big = np.flatnonzero(plain == np.argmax(np.bincount(plain)))
    assert big.size == 3
    others = np.flatnonzero(plain != plain[big[0]])
    groups = np.arange(7)
    groups[others[:3]] = 99  # spread over the two folds of 2
    assert len(set(plain[others[:3]])) == 2
    folds = list(cv.split(X, groups=groups))
    check_partition(folds, 7)
    assert_groups_together(folds, groups)
    fixed = cv.fold_assignment(X, groups)
    assert set(fixed[others[:3]]) == {plain[big[0]]}
    assert sorted(np.bincount(fixed)) == sorted(np.bincount(plain))


def test_determinism_and_seed():
    names = stanford_like_names()
    groups = stanford_duplicate_groups(names)
    first = splits(ImageKFold(5, random_state=3), names, groups)
    assert splits(ImageKFold(5, random_state=3), names, groups) == first
    assert splits(ImageKFold(5, random_state=4), names, groups) != first


def test_group_errors():
    cv = ImageKFold(2)
    with pytest.raises(ValueError, match="one value per image"):
        list(cv.split(np.zeros((6, 1)), groups=[0, 1, 2]))
    # one group of 4 in 6 images: equal folds of 3 are impossible
    with pytest.raises(ValueError, match="GroupKFold"):
        list(cv.split(np.zeros((6, 1)), groups=[0, 0, 0, 0, 1, 2]))


def test_parameter_errors():
    with pytest.raises(ValueError, match="n_splits=2 or more"):
        ImageKFold(1)
    with pytest.raises(ValueError):
        list(ImageKFold(5).split(np.zeros((3, 1))))  # more folds than images


# ============================================================ cv= usability

def test_usable_as_cv_in_cross_val_score_with_groups():
    images, maps = make_scenes(10)
    # image 7 is a duplicate of image 2 with other labels
    images[7], maps[7] = images[2], maps[2][::-1, ::-1].copy()
    groups = np.arange(10)
    groups[7] = 2
    cv = ImageKFold(5, random_state=1)
    scores = cross_val_score(MeanColourSegmenter(), images, maps, cv=cv,
                             groups=groups, error_score="raise")
    expected = []
    for train, test in cv.split(images, groups=groups):
        assert (2 in test) == (7 in test)
        model = MeanColourSegmenter().fit([images[i] for i in train],
                                          [maps[i] for i in train])
        expected.append(pixel_accuracy(
            [maps[i] for i in test], model.predict([images[i] for i in test])))
    np.testing.assert_allclose(scores, expected)


def test_usable_as_cv_in_grid_search():
    images, maps = make_scenes(12)
    search = GridSearchCV(MeanColourSegmenter(), {"bias": [0.0, 1e7]},
                          cv=ImageKFold(3), scoring=mean_iou_scorer,
                          error_score="raise")
    groups = np.arange(12)
    groups[[3, 8]] = 0  # images 0, 3 and 8 are near-duplicates
    search.fit(images, maps, groups=groups)
    assert search.best_params_ == {"bias": 0.0}
    assert search.n_splits_ == 3


# ============================================================ Stanford

def test_stanford_folds():
    names = stanford_like_names()
    folds = stanford_folds(names)
    check_partition(folds, 715)
    assert [(len(a), len(b)) for a, b in folds] == [(572, 143)] * 5
    assert_groups_together(folds, stanford_duplicate_groups(names))
    # it is ImageKFold on the images sorted by name, mapped back
    order = np.argsort(names)
    sorted_groups = stanford_duplicate_groups(names)[order]
    expected = [(np.sort(order[a]), np.sort(order[b])) for a, b in
                ImageKFold(5, random_state=0).split(order, groups=
                                                    sorted_groups)]
    for (a, b), (c, d) in zip(folds, expected):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_stanford_folds_do_not_depend_on_input_order_or_paths():
    names = stanford_like_names()
    folds = stanford_folds(names)
    as_paths = [f"iccv09Data/images/{name}.jpg" for name in names[::-1]]
    for (_, test), (_, test_paths) in zip(folds,
                                          stanford_folds(as_paths)):
        assert (sorted(names[i] for i in test)
                == sorted(os.path.basename(as_paths[i])[:-4]
                          for i in test_paths))


def test_stanford_folds_groups_options():
    names = stanford_like_names()
    order = np.argsort(names)
    plain = stanford_folds(names, groups=None, random_state=2)
    for (_, test), (_, expected) in zip(
            plain, KFold(5, shuffle=True, random_state=2).split(order)):
        np.testing.assert_array_equal(test, np.sort(order[expected]))
    custom = np.arange(715)
    custom[:60] //= 4  # 15 groups of 4 images
    folds = stanford_folds(names, groups=custom, n_splits=3)
    assert len(folds) == 3
    assert_groups_together(folds, custom)
    with pytest.raises(ValueError, match="'duplicates'"):
        stanford_folds(names, groups="pairs")
    with pytest.raises(ValueError, match="one value per image"):
        stanford_folds(names, groups=[0, 1])


def test_filename_errors():
    with pytest.raises(ValueError, match="'0000001' twice"):
        stanford_folds(["0000001.jpg", "a/0000001.jpg", "0000002"])
    with pytest.raises(TypeError, match="not one string"):
        canonical_stanford_split("0000001")
    with pytest.raises(ValueError, match="empty"):
        canonical_stanford_split([])


def test_stanford_duplicate_groups():
    names = ["6000318", "0000047", "6000068.jpg", "6000117"]
    np.testing.assert_array_equal(stanford_duplicate_groups(names),
                                  [2, 1, 2, 3])  # 6000324 is absent


def test_canonical_split_is_sorted_kfold_fold_0():
    names = stanford_like_names()
    train, test = canonical_stanford_split(names)
    assert (len(train), len(test)) == (572, 143)
    sorted_names = sorted(names)
    ktrain, ktest = next(KFold(5, shuffle=True, random_state=0).split(
        sorted_names))
    assert sorted(names[i] for i in test) == [sorted_names[i] for i in ktest]
    assert sorted(names[i] for i in train) == [sorted_names[i]
                                               for i in ktrain]
    assert list(train) == sorted(train) and list(test) == sorted(test)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])),
                                  np.arange(715))


@pytest.mark.skipif(not os.path.exists(STANFORD_ARCHIVE),
                    reason="Stanford Background archive not available")
def test_canonical_split_on_the_real_dataset():
    with tarfile.open(STANFORD_ARCHIVE) as archive:
        names = [member.name for member in archive.getmembers()
                 if "/images/" in member.name and member.isfile()]
    assert len(names) == 715
    stems = np.array([os.path.basename(name)[:-4] for name in names])
    train, test = canonical_stanford_split(names)
    assert (len(train), len(test)) == (572, 143)
    # as documented: only 6000257 / 6000348 straddles it
    in_test = set(stems[test])
    assert [(a in in_test, b in in_test)
            for a, b in STANFORD_DUPLICATE_PAIRS] == [
        (False, False), (False, False), (True, False)]
    folds = stanford_folds(names)
    assert [(len(a), len(b)) for a, b in folds] == [(572, 143)] * 5
    assert_groups_together(folds, stanford_duplicate_groups(names))


# ============================================================ hold-out

@pytest.mark.parametrize("n_images, fraction, n_val", [
    (100, 0.1, 10), (715, 0.1, 72), (10, 0.7, 7), (2, 0.01, 1), (2, 0.99, 1),
    (3, 0.5, 2), (50, 0.001, 1)])
def test_train_validation_split_sizes(n_images, fraction, n_val):
    train, val = train_validation_split(n_images, fraction, random_state=0)
    assert len(val) == n_val and len(train) == n_images - n_val
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])),
                                  np.arange(n_images))
    assert list(train) == sorted(train) and list(val) == sorted(val)


def test_train_validation_split_determinism():
    first = train_validation_split(50, 0.2, random_state=7)
    again = train_validation_split(50, 0.2, random_state=7)
    other = train_validation_split(50, 0.2, random_state=8)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    rng = np.random.RandomState(7)
    np.testing.assert_array_equal(
        train_validation_split(50, 0.2, random_state=rng)[1], first[1])


def test_train_validation_split_groups():
    rng = np.random.default_rng(0)
    for seed in range(10):
        groups = rng.integers(0, 30, size=60)
        train, val = train_validation_split(60, 0.25, random_state=seed,
                                            groups=groups)
        assert not set(groups[train]) & set(groups[val])
        assert len(train) > 0 and len(val) > 0
    # with ungrouped images to fill up, the size is exact
    groups = np.arange(40)
    groups[:6] = 0
    for seed in range(10):
        train, val = train_validation_split(40, 0.1, random_state=seed,
                                            groups=groups)
        assert len(val) == 4
        assert set(range(6)) <= set(train) or set(range(6)) <= set(val)
    # distinct groups: same as no groups
    np.testing.assert_array_equal(
        train_validation_split(40, 0.3, 3, groups=np.arange(40))[1],
        train_validation_split(40, 0.3, 3)[1])
    # every group larger than the validation size: one group is taken
    train, val = train_validation_split(6, 0.1, 0, groups=[0, 0, 1, 1, 2, 2])
    assert len(val) == 2 and len(train) == 4


@pytest.mark.parametrize("args, error, message", [
    ((1, 0.1), ValueError, "at least 2 images"),
    ((0, 0.1), ValueError, "at least 2 images"),
    ((10, 0.0), ValueError, r"validation_fraction.*\(0, 1\)"),
    ((10, 1.0), ValueError, r"validation_fraction.*\(0, 1\)"),
    ((10, -0.1), ValueError, "validation_fraction"),
    ((10, True), ValueError, "validation_fraction"),
    ((10, "0.1"), ValueError, "validation_fraction"),
    ((10.0, 0.1), TypeError, "n_images must be an integer"),
])
def test_train_validation_split_errors(args, error, message):
    with pytest.raises(error, match=message):
        train_validation_split(*args)


def test_train_validation_split_group_errors():
    with pytest.raises(ValueError, match="one group"):
        train_validation_split(4, 0.5, 0, groups=[1, 1, 1, 1])
    with pytest.raises(ValueError, match="one value per image"):
        train_validation_split(4, 0.5, 0, groups=[1, 2])
