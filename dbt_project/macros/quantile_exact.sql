{#-
  Continuous quantile q = q_num / q_den of a sorted list of integers (linear interpolation between
  closest ranks, as quantile_cont and Python's statistics.quantiles(method="inclusive")), divided by
  `divisor` and rounded half up to `scale` places, exactly. DuckDB's quantile_cont interpolates in
  binary floating point even on DECIMAL input (109.5 came back as 109.49), so the rank arithmetic is
  done here in integers: h = (n − 1)·q_num / q_den, value = x[lo] + (x[lo+1] − x[lo])·rem / q_den.
  Null for an empty or null list.
-#}
{% macro quantile_exact(sorted_list, q_num, q_den, divisor=1, scale=2) -%}
    (case
        when {{ sorted_list }} is null or len({{ sorted_list }}) = 0 then null
        when ((len({{ sorted_list }}) - 1) * {{ q_num }}) % {{ q_den }} = 0
            then {{ div_half_up(sorted_list ~ '[((len(' ~ sorted_list ~ ') - 1) * ' ~ q_num ~ ') // ' ~ q_den ~ ' + 1]', divisor, scale) }}
        else {{ div_half_up(
            sorted_list ~ '[((len(' ~ sorted_list ~ ') - 1) * ' ~ q_num ~ ') // ' ~ q_den ~ ' + 1] * ' ~ q_den
            ~ ' + (' ~ sorted_list ~ '[((len(' ~ sorted_list ~ ') - 1) * ' ~ q_num ~ ') // ' ~ q_den ~ ' + 2] - '
            ~ sorted_list ~ '[((len(' ~ sorted_list ~ ') - 1) * ' ~ q_num ~ ') // ' ~ q_den ~ ' + 1]) * (((len('
            ~ sorted_list ~ ') - 1) * ' ~ q_num ~ ') % ' ~ q_den ~ ')',
            q_den ~ ' * ' ~ divisor, scale) }}
    end)
{%- endmacro %}
