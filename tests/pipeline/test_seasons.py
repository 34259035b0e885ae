from datetime import date

import pytest

from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.seasons import parse_seasons, season_of


def test_default_seasons_cover_the_year_without_gaps():
    ws = parse_seasons()
    days = [date(2019, 12, 1).toordinal() + i for i in range(366)]
    hits = [season_of(date.fromordinal(d), ws) for d in days]
    assert all(hits)


@pytest.mark.parametrize(
    "year,end", [(2019, date(2020, 2, 29)), (2020, date(2021, 2, 28)), (2023, date(2024, 2, 29))]
)
def test_winter_ends_on_the_last_day_of_february(year, end):
    winter = {w.name: w for w in parse_seasons()}["winter"]
    assert winter.dates(year) == (date(year, 12, 1), end)


def test_winter_query_includes_the_whole_leap_day():
    winter = {w.name: w for w in parse_seasons()}["winter"]
    assert winter.query_range(2019) == ("2019-12-01T00:00:00.000Z", "2020-02-29T23:59:59.999Z")


def test_leap_day_belongs_to_the_previous_years_winter():
    assert season_of(date(2020, 2, 29), parse_seasons()) == ("winter", 2019)
    assert season_of(date(2020, 3, 1), parse_seasons()) == ("spring", 2020)


@pytest.mark.parametrize(
    "spec,message",
    [
        (
            {"a": {"start": "03-01", "end": "06-30"}, "b": {"start": "06-01", "end": "08-31"}},
            "overlap",
        ),
        ({"a": {"start": "13-01", "end": "06-30"}}, "not a day of the year"),
        ({"a": {"start": "3-1", "end": "06-30"}}, "expected MM-DD"),
        ({"Summer": {"start": "06-01", "end": "08-31"}}, "lower-case"),
        ({}, "at least one season"),
    ],
)
def test_bad_seasons(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_seasons(spec)
