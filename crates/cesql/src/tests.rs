//! Behaviour tests across the whole pipeline (text in, value and errors out)
//! for the rules that are easy to get wrong: precedence, LIKE escapes,
//! integer overflow, the error-but-value model, error messages, and
//! robustness against hostile input. The conformance suite itself runs from
//! `tests/tck.rs`.

use std::borrow::Cow;

use serde_json::{Value as Json, json};

use super::eval::Evaluator;
use super::limits::{
    MAX_NESTING, MAX_NODES, MAX_SOURCE_BYTES, MAX_STRING_BYTES, MAX_TREE_DEPTH, MAX_WORK,
};
use super::*;

fn event() -> Json {
    json!({
        "specversion": "1.0",
        "id": "myId",
        "source": "https://example.com/source",
        "type": "com.example.error",
        "myint": 10,
        "mybool": true,
        "numeric": "42",
        "data": "payload",
    })
}

fn eval(source: &str) -> Evaluation {
    Expression::parse(source)
        .unwrap_or_else(|e| panic!("{source:?} should parse: {e}"))
        .evaluate(&event())
}

/// The value of an expression that must evaluate without errors.
fn value(source: &str) -> Value {
    let evaluation = eval(source);
    assert!(evaluation.is_ok(), "{source:?}: {:?}", evaluation.errors);
    evaluation.value
}

/// The value and error kinds of an expression.
fn outcome(source: &str) -> (Value, Vec<ErrorKind>) {
    let evaluation = eval(source);
    let kinds = evaluation.errors.iter().map(EvalError::kind).collect();
    (evaluation.value, kinds)
}

fn parse_error(source: &str) -> ParseError {
    match Expression::parse(source) {
        Ok(_) => panic!("{source:?} should not parse"),
        Err(e) => e,
    }
}

fn int(i: i32) -> Value {
    Value::Integer(i)
}

fn boolean(b: bool) -> Value {
    Value::Boolean(b)
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

#[test]
fn arithmetic_precedence_and_associativity() {
    assert_eq!(value("1 + 2 * 3"), int(7));
    assert_eq!(value("(1 + 2) * 3"), int(9));
    assert_eq!(value("10 - 4 - 3"), int(3));
    assert_eq!(value("100 / 10 / 5"), int(2));
    assert_eq!(value("7 % 4 * 2"), int(6));
    assert_eq!(value("-2 * 3"), int(-6));
    assert_eq!(value("2 - -3"), int(5));
    assert_eq!(value("5 -3"), int(2));
    assert_eq!(value("- 4 + 1"), int(-3));
    assert_eq!(value("+5 - +2"), int(3));
}

#[test]
fn comparison_binds_looser_than_arithmetic_and_tighter_than_logic() {
    assert_eq!(value("2 * 3 = 6"), boolean(true));
    assert_eq!(value("1 < 2 = TRUE"), boolean(true));
    assert_eq!(value("1 = 1 AND 2 = 2"), boolean(true));
    assert_eq!(value("myint > 5 AND myint <= 10"), boolean(true));
}

#[test]
fn logical_operators_share_one_level_grouped_left_to_right() {
    // Spec 3.6 lists AND, OR and XOR at one precedence level, evaluated left
    // to right; unlike SQL, AND does not bind tighter than OR.
    assert_eq!(value("TRUE OR TRUE AND FALSE"), boolean(false));
    assert_eq!(value("FALSE AND FALSE OR TRUE"), boolean(true));
    assert_eq!(value("TRUE XOR TRUE OR TRUE"), boolean(true));
    assert_eq!(value("TRUE OR (TRUE AND FALSE)"), boolean(true));
}

#[test]
fn unary_operators_bind_tightest() {
    assert_eq!(value("NOT TRUE AND FALSE"), boolean(false));
    assert_eq!(value("NOT FALSE AND TRUE"), boolean(true));
    assert_eq!(value("NOT TRUE = FALSE"), boolean(true));
    assert_eq!(value("NOT NOT TRUE"), boolean(true));
    assert_eq!(value("NOT EXISTS subject"), boolean(true));
    assert_eq!(value("--10"), int(10));
    assert_eq!(value("-LENGTH('abc')"), int(-3));
}

#[test]
fn like_and_in_bind_tighter_than_binary_operators() {
    // `1 + (2 LIKE '3')`: the LIKE is false, which casts to 0.
    assert_eq!(value("1 + 2 LIKE '3'"), int(1));
    assert_eq!(value("'a' IN ('a') = TRUE"), boolean(true));
    assert_eq!(
        value("myint IN (1, 10) AND type LIKE '%.error'"),
        boolean(true)
    );
    assert_eq!(
        value("type NOT LIKE '%.error' OR id NOT IN ('x')"),
        boolean(true)
    );
}

#[test]
fn keywords_functions_and_attribute_names_ignore_case() {
    assert_eq!(value("true aNd NoT fAlSe"), boolean(true));
    assert_eq!(value("lower('ABC') = Lower('aBc')"), boolean(true));
    assert_eq!(value("Exists ID AND ID = 'myId'"), boolean(true));
    assert_eq!(value("'x' Not Like 'y' And 1 nOt iN (2)"), boolean(true));
}

#[test]
fn like_escapes_through_string_literals() {
    assert_eq!(value(r"'a_b' LIKE 'a\_b'"), boolean(true));
    assert_eq!(value(r"'axb' LIKE 'a\_b'"), boolean(false));
    assert_eq!(value(r"'50%' LIKE '50\%'"), boolean(true));
    assert_eq!(value(r"'500' LIKE '50\%'"), boolean(false));
    assert_eq!(value(r"'ab\c' LIKE 'ab\c'"), boolean(true));
    assert_eq!(value(r"'it\'s' LIKE 'it\'_'"), boolean(true));
    assert_eq!(value(r#""say \"hi\"" LIKE '%"hi"'"#), boolean(true));
    assert_eq!(value("source LIKE 'https://%'"), boolean(true));
    assert_eq!(value("myint LIKE '1_'"), boolean(true));
    assert_eq!(value("mybool LIKE 'tr%'"), boolean(true));
}

#[test]
fn integer_literals_are_32_bit() {
    assert_eq!(value("2147483647"), int(i32::MAX));
    assert_eq!(value("-2147483648"), int(i32::MIN));
    assert_eq!(value("007"), int(7));
    for source in ["2147483648", "-2147483649", "99999999999999999999999"] {
        let err = parse_error(source);
        assert!(
            matches!(err.kind(), ParseErrorKind::IntegerOutOfRange(_)),
            "{source}: {err}"
        );
    }
    assert_eq!(
        parse_error("1 + -2147483649").to_string(),
        "column 5: integer literal -2147483649 does not fit in a 32-bit signed integer"
    );
}

#[test]
fn integer_overflow_is_a_math_error() {
    let math = vec![ErrorKind::Math];
    assert_eq!(outcome("2147483647 + 1"), (int(0), math.clone()));
    assert_eq!(outcome("-2147483648 - 1"), (int(0), math.clone()));
    assert_eq!(outcome("65536 * 65536"), (int(0), math.clone()));
    assert_eq!(outcome("-2147483648 / -1"), (int(0), math.clone()));
    assert_eq!(outcome("-2147483648 % -1"), (int(0), vec![]));
    // Negation and ABS of i32::MIN saturate (ABS as spec 3.5.2 prescribes).
    assert_eq!(outcome("-(-2147483648)"), (int(i32::MAX), math.clone()));
    assert_eq!(outcome("ABS(-2147483648)"), (int(i32::MAX), math.clone()));
    assert_eq!(outcome("5 / 0"), (int(0), math.clone()));
    assert_eq!(outcome("5 % 0"), (int(0), math));
    assert_eq!(
        outcome("INT('2147483648')"),
        (int(0), vec![ErrorKind::Cast])
    );
}

#[test]
fn an_operator_carries_on_after_its_own_error() {
    // A failed cast yields the target type's zero value, and NOT applies to it.
    assert_eq!(outcome("NOT 10"), (boolean(true), vec![ErrorKind::Cast]));
    assert_eq!(outcome("'abc' + 1"), (int(1), vec![ErrorKind::Cast]));
    assert_eq!(outcome("'x' < 1"), (boolean(true), vec![ErrorKind::Cast]));
    assert_eq!(
        outcome("'yes' OR TRUE"),
        (boolean(true), vec![ErrorKind::Cast])
    );
    assert_eq!(
        outcome("1 IN ('x', 1)"),
        (boolean(true), vec![ErrorKind::Cast])
    );
    assert_eq!(
        outcome("LEFT('abc', -1)"),
        (string("abc"), vec![ErrorKind::FunctionEvaluation])
    );
}

#[test]
fn an_operand_error_makes_the_operator_yield_its_zero_value() {
    let missing = vec![ErrorKind::MissingAttribute];
    assert_eq!(outcome("missing"), (boolean(false), missing.clone()));
    assert_eq!(outcome("NOT missing"), (boolean(false), missing.clone()));
    assert_eq!(outcome("-missing"), (int(0), missing.clone()));
    assert_eq!(outcome("missing = ''"), (boolean(false), missing.clone()));
    assert_eq!(outcome("missing != ''"), (boolean(false), missing.clone()));
    assert_eq!(
        outcome("missing NOT LIKE 'x'"),
        (boolean(false), missing.clone())
    );
    assert_eq!(
        outcome("missing NOT IN ('x')"),
        (boolean(false), missing.clone())
    );
    assert_eq!(outcome("LENGTH(missing)"), (int(0), missing.clone()));
    assert_eq!(outcome("UPPER(missing)"), (string(""), missing.clone()));
    // The division is never attempted, so there is no math error.
    assert_eq!(outcome("missing / 0"), (int(0), missing.clone()));
    // Evaluation stops at the first failing operand.
    assert_eq!(
        outcome("CONCAT('a', missing, 1 / 0)"),
        (string(""), missing.clone())
    );
    assert_eq!(outcome("missing + (1 / 0)"), (int(0), missing.clone()));
    assert_eq!(
        outcome("1 IN (missing, 1)"),
        (boolean(false), missing.clone())
    );
    // Errors from deeper down count as operand errors too.
    assert_eq!(
        outcome("TRUE AND (1 != 1 / 0)"),
        (boolean(false), vec![ErrorKind::Math])
    );
    assert_eq!(
        outcome("(NOT 10) = TRUE"),
        (boolean(false), vec![ErrorKind::Cast])
    );
    assert_eq!(
        outcome("'abc' != 1"),
        (boolean(false), vec![ErrorKind::Cast])
    );
    assert_eq!(
        outcome("UPPER(LEFT('abc', -1))"),
        (string(""), vec![ErrorKind::FunctionEvaluation])
    );
    assert_eq!(outcome("missing OR TRUE"), (boolean(false), missing));
}

#[test]
fn short_circuits_skip_the_right_operand_and_its_errors() {
    assert_eq!(outcome("TRUE OR missing"), (boolean(true), vec![]));
    assert_eq!(outcome("FALSE AND 1 / 0 = 0"), (boolean(false), vec![]));
    assert_eq!(outcome("1 IN (1, missing)"), (boolean(true), vec![]));
    // XOR always needs both sides.
    assert_eq!(
        outcome("TRUE XOR missing"),
        (boolean(false), vec![ErrorKind::MissingAttribute])
    );
}

#[test]
fn unknown_functions_are_evaluation_errors() {
    let missing_function = vec![ErrorKind::MissingFunction];
    assert_eq!(
        outcome("NOPE(1)"),
        (boolean(false), missing_function.clone())
    );
    assert_eq!(
        outcome("LENGTH()"),
        (boolean(false), missing_function.clone())
    );
    assert_eq!(
        outcome("LEFT('a')"),
        (boolean(false), missing_function.clone())
    );
    assert_eq!(outcome("CONCAT_WS()"), (boolean(false), missing_function));
    let evaluation = eval("my_func(1, 2)");
    assert_eq!(
        evaluation.errors[0].to_string(),
        "no function MY_FUNC taking 2 argument(s)"
    );
}

#[test]
fn the_first_missing_function_is_found_without_evaluating() {
    let first = |source: &str| {
        Expression::parse(source)
            .expect(source)
            .missing_function()
            .map(|(name, arity)| (name.to_string(), arity))
    };
    assert_eq!(first("NOPE(1)"), Some(("NOPE".into(), 1)));
    assert_eq!(first("CONCAT_WS()"), Some(("CONCAT_WS".into(), 0)));
    assert_eq!(
        first("TRUE AND LOWER(inner_one()) = 'a' OR other(1, 2)"),
        Some(("INNER_ONE".into(), 0))
    );
    assert_eq!(first("type IN ('a', f(1))"), Some(("F".into(), 1)));
    assert_eq!(first("NOT -g(subject) = 1"), Some(("G".into(), 1)));
    assert_eq!(first("LOWER(type) LIKE 'a%' AND LENGTH(id) > 1"), None);
    assert_eq!(first("EXISTS subject"), None);
}

#[test]
fn equality_casts_the_left_operand_to_the_right_operands_type() {
    assert_eq!(value("'TRUE' = TRUE"), boolean(true));
    assert_eq!(value("TRUE = 'TRUE'"), boolean(false));
    assert_eq!(value("numeric = 42"), boolean(true));
    assert_eq!(value("42 = numeric"), boolean(true));
    assert_eq!(value("'042' = 42"), boolean(true));
    assert_eq!(value("42 = '042'"), boolean(false));
    assert_eq!(value("mybool = 'true'"), boolean(true));
    assert_eq!(outcome("1 = TRUE"), (boolean(false), vec![ErrorKind::Cast]));
}

#[test]
fn casting_functions() {
    assert_eq!(value("INT('+12') + INT(TRUE)"), int(13));
    assert_eq!(value("BOOL(7) AND BOOL('True')"), boolean(true));
    assert_eq!(value("STRING(-3) = '-3'"), boolean(true));
    assert_eq!(value("IS_INT('12') AND NOT IS_INT('1.5')"), boolean(true));
    assert_eq!(value("IS_BOOL('FALSE') AND NOT IS_BOOL(1)"), boolean(true));
}

#[test]
fn missing_attribute_errors_name_the_attribute() {
    let evaluation = eval("Subject = 'x'");
    assert_eq!(
        evaluation.errors,
        vec![EvalError::MissingAttribute {
            name: "subject".into()
        }]
    );
    assert_eq!(
        evaluation.errors[0].to_string(),
        "attribute `subject` is not present on the event"
    );
    // `data` is the payload, not an attribute.
    assert_eq!(value("EXISTS data"), boolean(false));
}

#[test]
fn matches_requires_boolean_true_and_no_errors() {
    let event = event();
    let matches = |source: &str| Expression::parse(source).expect("parses").matches(&event);
    assert!(matches("type LIKE '%.error'"));
    assert!(matches("TRUE"));
    assert!(!matches("FALSE"));
    assert!(!matches("1"));
    assert!(!matches("'true'"));
    assert!(!matches("NOT 10"), "true, but with a cast error");
    assert!(!matches("myext = 'x'"));
    assert!(!matches("NOT (myext = 'x')"));
}

#[test]
fn parse_errors_say_where_and_what() {
    let cases = [
        (
            "ABC(",
            "column 5: expected an expression, found the end of the expression",
        ),
        (
            "",
            "column 1: expected an expression, found the end of the expression",
        ),
        (
            "x LIKE 123",
            "column 8: expected a string literal (LIKE takes a literal pattern), found `123`",
        ),
        (
            "id = 'a' id",
            "column 10: expected an operator or the end of the expression, found `id`",
        ),
        (
            "(1 + 2",
            "column 7: expected `)`, found the end of the expression",
        ),
        ("a == b", "column 4: expected an expression, found `=`"),
        ("AND", "column 1: expected an expression, found `AND`"),
        (
            "x IN ()",
            "column 7: expected an element of the IN set, found `)`",
        ),
        (
            "x IN 1",
            "column 6: expected `(` opening the IN set, found `1`",
        ),
        ("f(1 2)", "column 5: expected `,` or `)`, found `2`"),
        (
            "EXISTS 1",
            "column 8: expected an attribute name after EXISTS, found `1`",
        ),
        (
            "+x",
            "column 2: expected an integer literal after a `+` sign, found `x`",
        ),
        ("a = 'open", "column 5: string literal is not terminated"),
        ("a # b", "column 3: unexpected character `#`"),
        (
            "my_ext = 1",
            "column 1: `my_ext` is not a valid attribute name (lower-case letters and digits only) nor a function call",
        ),
        (
            "1abc(2)",
            "column 1: `1abc` is not a valid function name (letters and `_`, starting with a letter)",
        ),
    ];
    for (source, message) in cases {
        assert_eq!(parse_error(source).to_string(), message, "{source:?}");
    }
}

#[test]
fn deep_input_is_rejected_without_exhausting_the_stack() {
    // Deep enough for both nesting limits, short enough for the length limit.
    let n = 700;
    let hostile = [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}TRUE", "NOT ".repeat(n)),
        format!("{}1", "-".repeat(n)),
        format!("{}1", "- ".repeat(n)),
        format!("1{}", " + 1".repeat(n)),
        format!("x{}", " LIKE 'a'".repeat(n)),
        format!("x{}", " NOT IN (1)".repeat(n)),
        format!("{}1{}", "ABS(".repeat(n), ")".repeat(n)),
        format!("1{}", " IN (1".repeat(n)),
    ];
    for source in &hostile {
        assert!(source.len() <= MAX_SOURCE_BYTES, "{}", source.len());
        let err = parse_error(source);
        assert!(matches!(err.kind(), ParseErrorKind::TooDeep(_)), "{err}");
    }
    // Longer still, the length limit refuses it before the parser starts.
    let err = parse_error(&format!("{}TRUE", "NOT ".repeat(100_000)));
    assert!(
        matches!(err.kind(), ParseErrorKind::TooLong { .. }),
        "{err}"
    );
}

#[test]
fn expressions_up_to_the_limits_evaluate() {
    let nested = format!(
        "{}1{}",
        "(".repeat(MAX_NESTING - 1),
        ")".repeat(MAX_NESTING - 1)
    );
    assert_eq!(value(&nested), int(1));
    let chain = format!("myint = 0{}", " OR myint = 10".repeat(MAX_TREE_DEPTH - 2));
    assert_eq!(value(&chain), boolean(true));
    let too_long = format!("myint = 0{}", " OR myint = 10".repeat(MAX_TREE_DEPTH));
    assert!(matches!(
        parse_error(&too_long).kind(),
        ParseErrorKind::TooDeep(_)
    ));
}

#[test]
fn string_attributes_are_lent_not_copied() {
    let event = event();
    let expression = Expression::parse("source").expect("parses");
    let mut errors = Vec::new();
    let mut budget = Budget::default();
    let value = Evaluator::new(&event, &mut errors, &mut budget).eval(&expression.root);
    assert!(
        matches!(value, ValueRef::String(Cow::Borrowed(_))),
        "{value:?}"
    );
    let expression = Expression::parse("TRIM(LEFT(source, 5))").expect("parses");
    let value = Evaluator::new(&event, &mut errors, &mut budget).eval(&expression.root);
    assert_eq!(value, ValueRef::from("https"));
    assert!(
        matches!(value, ValueRef::String(Cow::Borrowed(_))),
        "{value:?}"
    );
}

#[test]
fn expressions_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    assert_send_sync::<Evaluation>();
    assert_send_sync::<ParseError>();
}

#[test]
fn expression_round_trips_its_source() {
    let expression: Expression = "id = 'x'".parse().expect("parses");
    assert_eq!(expression.source(), "id = 'x'");
    assert_eq!(expression.to_string(), "id = 'x'");
}

/// Deterministic xorshift, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next() % n).unwrap_or_default()
    }
}

#[test]
fn garbled_input_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "(",
        ")",
        ",",
        "+",
        "-",
        "*",
        "/",
        "%",
        "=",
        "!=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "!",
        "'",
        "\"",
        "\\",
        "'a\\'b'",
        "\"x\"",
        "''",
        "0",
        "1",
        "2147483647",
        "2147483648",
        "-",
        "AND",
        "or",
        "XoR",
        "NOT",
        "LIKE",
        "IN",
        "EXISTS",
        "TRUE",
        "false",
        "id",
        "myint",
        "mybool",
        "missing",
        "source",
        "LENGTH",
        "CONCAT",
        "CONCAT_WS",
        "LEFT",
        "RIGHT",
        "SUBSTRING",
        "ABS",
        "INT",
        "BOOL",
        "STRING",
        "IS_INT",
        "LOWER",
        "UPPER",
        "TRIM",
        "nope",
        "my_ext",
        "'%'",
        "'_'",
        "'\\%'",
        "é",
        "日本",
        "\u{0}",
        " ",
        "\t",
        "#",
        "1abc",
        "-2147483648",
    ];
    const SEEDS: &[&str] = &[
        "int(hop) < int(ttl) and int(hop) < 1000",
        "(id = 'myId' OR type LIKE '%.success') AND (myint IN (1, 10) OR source LIKE 'h%')",
        "SUBSTRING(CONCAT_WS(',', 'a', 'b'), -3, 2) = 'a,' XOR NOT EXISTS subject",
        "ABS(-2147483648) + LENGTH(\"a\\\"b\") * 2 % 3 - -1",
    ];
    let event = event();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for round in 0..3_000 {
        let source = if round % 2 == 0 {
            let mut source = String::new();
            for _ in 0..=rng.below(12) {
                source.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                if rng.below(3) > 0 {
                    source.push(' ');
                }
            }
            source
        } else {
            // Delete, duplicate or swap in characters of a valid expression.
            let mut chars: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
            for _ in 0..=rng.below(4) {
                if chars.is_empty() {
                    break;
                }
                let at = rng.below(chars.len());
                match rng.below(3) {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, chars[rng.below(chars.len())]),
                    _ => {
                        chars[at] = FRAGMENTS[rng.below(FRAGMENTS.len())]
                            .chars()
                            .next()
                            .unwrap_or('x')
                    }
                }
            }
            chars.into_iter().collect()
        };
        match Expression::parse(&source) {
            Ok(expression) => {
                parsed += 1;
                let evaluation = expression.evaluate(&event);
                let _ = expression.matches(&event);
                for error in &evaluation.errors {
                    assert!(!error.to_string().is_empty());
                }
            }
            Err(error) => {
                assert!(
                    error.column() <= source.chars().count() + 1,
                    "{source:?}: {error}"
                );
                assert!(error.offset() <= source.len());
            }
        }
    }
    // The generator must exercise the evaluator too, not only parse errors.
    assert!(parsed > 100, "only {parsed} inputs parsed");
}

/// An event whose `subject` is `subject`, next to the usual attributes.
fn event_with_subject(subject: String) -> Json {
    let mut event = event();
    event["subject"] = Json::String(subject);
    event
}

/// `count` copies of `term` joined by `operator` into a balanced tree, so
/// that the tree depth limit does not cut the chain short.
fn balanced(term: &str, operator: &str, count: usize) -> String {
    if count <= 1 {
        return term.to_owned();
    }
    let left = balanced(term, operator, count / 2);
    let right = balanced(term, operator, count - count / 2);
    format!("({left}{operator}{right})")
}

/// The largest expression of copies of `term` joined by `operator` that the
/// size limits let through.
fn largest(term: &str, operator: &str) -> Expression {
    let (mut fits, mut too_many) = (1, MAX_SOURCE_BYTES);
    while too_many - fits > 1 {
        let count = (fits + too_many) / 2;
        if Expression::parse(&balanced(term, operator, count)).is_ok() {
            fits = count;
        } else {
            too_many = count;
        }
    }
    Expression::parse(&balanced(term, operator, fits)).expect("one term parses")
}

#[test]
fn expressions_over_a_size_limit_are_refused_naming_the_limit() {
    let long = format!("subject LIKE '{}'", "a".repeat(MAX_SOURCE_BYTES));
    assert_eq!(
        parse_error(&long).kind(),
        &ParseErrorKind::TooLong {
            length: long.len(),
            limit: MAX_SOURCE_BYTES
        }
    );
    assert!(
        parse_error(&long)
            .to_string()
            .contains("the limit is 8192 bytes")
    );
    // Exactly at the limit is fine.
    let longest = format!("id = '{}'", "a".repeat(MAX_SOURCE_BYTES - 7));
    assert_eq!(longest.len(), MAX_SOURCE_BYTES);
    assert_eq!(value(&longest), boolean(false));

    let many = format!("id IN ({})", vec!["1"; MAX_NODES].join(","));
    assert!(many.len() <= MAX_SOURCE_BYTES);
    let err = parse_error(&many);
    assert_eq!(err.kind(), &ParseErrorKind::TooManyNodes(MAX_NODES));
    assert!(err.to_string().contains("1024"), "{err}");
    let enough = format!("id IN ({})", vec!["1"; MAX_NODES - 2].join(","));
    assert_eq!(value(&enough), boolean(false));

    let deep = format!("{}TRUE", "NOT ".repeat(MAX_NESTING + 1));
    let err = parse_error(&deep);
    assert_eq!(err.kind(), &ParseErrorKind::TooDeep(MAX_NESTING));
    assert!(err.to_string().contains("64"), "{err}");
}

#[test]
fn a_function_building_too_long_a_string_stops_the_evaluation() {
    // The issue's CONCAT blow-up, as far as the length limit lets it go:
    // 200 KiB subjects concatenated a thousand times would be 200 MiB.
    let event = event_with_subject("s".repeat(200 * 1024));
    let parts = (MAX_SOURCE_BYTES - 20) / "subject,".len();
    let concat = format!("CONCAT({}) = ''", vec!["subject"; parts].join(","));
    let expression = Expression::parse(&concat).expect("within the size limits");
    let limit = LimitExceeded::StringLength {
        function: "CONCAT",
        limit: MAX_STRING_BYTES,
    };
    assert_eq!(expression.try_matches(&event), Err(limit));
    assert!(!expression.matches(&event));
    let evaluation = expression.evaluate(&event);
    assert_eq!(evaluation.value, boolean(false));
    assert_eq!(evaluation.errors, vec![EvalError::Limit(limit)]);
    assert_eq!(evaluation.errors[0].kind(), ErrorKind::Limit);
    assert_eq!(
        evaluation.errors[0].to_string(),
        "CONCAT would build a string of more than 1048576 bytes (the limit)"
    );

    for (source, function) in [
        (
            "CONCAT_WS(subject, subject, subject, subject, subject, subject) <> ''",
            "CONCAT_WS",
        ),
        (
            "UPPER(CONCAT(subject, subject, subject, subject, subject, LOWER(subject))) <> ''",
            "CONCAT",
        ),
    ] {
        let expression = Expression::parse(source).expect("parses");
        assert_eq!(
            expression.try_matches(&event),
            Err(LimitExceeded::StringLength {
                function,
                limit: MAX_STRING_BYTES
            }),
            "{source}"
        );
    }
    // Case mapping may grow a string: 'ǰ' (2 bytes) upper-cases to 3 bytes.
    let growing = event_with_subject("ǰ".repeat(MAX_STRING_BYTES / 2));
    let upper = Expression::parse("UPPER(subject) <> ''").expect("parses");
    assert_eq!(
        upper.try_matches(&growing),
        Err(LimitExceeded::StringLength {
            function: "UPPER",
            limit: MAX_STRING_BYTES
        })
    );
    // Up to the limit, all is well.
    let expression = Expression::parse("CONCAT(subject, subject) = subject").expect("parses");
    assert_eq!(expression.try_matches(&event), Ok(false));
    assert_eq!(
        upper.try_matches(&event_with_subject("ǰ".repeat(1000))),
        Ok(true)
    );
}

#[test]
fn sane_filters_on_the_largest_event_stay_within_the_limits() {
    // About the largest subject an event of the default largest size can carry.
    let event = event_with_subject(format!("{}needle", "a".repeat(1_000_000)));
    for source in [
        "subject LIKE '%needle'",
        "subject LIKE '%need_e%' AND LOWER(subject) LIKE '%needle%'",
        "LENGTH(subject) > 1000 AND UPPER(subject) LIKE '%NEEDLE' AND RIGHT(subject, 6) = 'needle'",
        "CONCAT(type, ':', subject) LIKE 'com.%:a%le'",
    ] {
        let expression = Expression::parse(source).expect("parses");
        assert_eq!(expression.try_matches(&event), Ok(true), "{source}");
    }
}

/// Item 3 of the issue: whatever the event and the expression, one
/// evaluation does at most `MAX_WORK` units of string work (each a comparison
/// or a byte read or built) besides visiting at most `MAX_NODES` nodes. The
/// expressions below are the costliest of each kind that the size limits let
/// through, against attributes as large as the largest event (1 MiB).
#[test]
fn evaluation_work_is_bounded_whatever_the_input() {
    let a = event_with_subject("a".repeat(MAX_STRING_BYTES));
    let zeros = event_with_subject("0".repeat(MAX_STRING_BYTES));
    let cases = [
        // Many LIKE scans through the whole subject, every kind of search.
        (largest("subject LIKE '%a_b%'", " OR "), &a),
        (largest("subject LIKE '%ab%'", " OR "), &a),
        (largest("subject LIKE 'a%ab%'", " OR "), &a),
        (
            Expression::parse(&format!("subject LIKE '%{}b%'", "a_".repeat(4_000)))
                .expect("parses"),
            &a,
        ),
        // Counting, comparing and parsing it over and over.
        (largest("LENGTH(subject) = 0", " OR "), &a),
        (largest("subject = CONCAT(subject, '')", " AND "), &a),
        (largest("INT(subject) = 1", " OR "), &zeros),
        (largest("subject + 0 = 1", " OR "), &zeros),
        (largest("subject IN ('x', subject)", " AND "), &a),
        // Building strings over and over, each below the string limit.
        (largest("LOWER(UPPER(subject)) = ''", " OR "), &a),
        (largest("TRIM(LEFT(subject, 999999)) = ''", " OR "), &a),
    ];
    for (expression, event) in cases {
        let shown = &expression.source()[..40];
        let mut errors = Vec::new();
        let mut budget = Budget::default();
        let mut evaluator = Evaluator::new(event, &mut errors, &mut budget);
        evaluator.eval(&expression.root);
        let used = evaluator.work_used();
        assert!(used <= MAX_WORK, "{used} units for {shown}…");
        assert_eq!(
            errors,
            vec![EvalError::Limit(LimitExceeded::Work { limit: MAX_WORK })],
            "{shown}… is stopped by the work limit, reported once"
        );
        assert_eq!(
            expression.try_matches(event),
            Err(LimitExceeded::Work { limit: MAX_WORK }),
            "{shown}…"
        );
    }
}

#[test]
fn expressions_sharing_a_budget_together_cost_no_more_than_it() {
    let mut event = event();
    event["subject"] = json!("x".repeat(1000));
    let expression = Expression::parse("subject LIKE '%y%'").expect("parses");
    assert_eq!(
        expression.try_matches_within(&event, &mut Budget::new(5000)),
        Ok(false)
    );
    let mut shared = Budget::new(5000);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(expression.try_matches_within(&event, &mut shared));
    }
    assert!(outcomes[0] == Ok(false), "{outcomes:?}");
    assert!(
        matches!(outcomes[9], Err(LimitExceeded::Work { limit: 5000 })),
        "ten scans of 1,000 bytes do not fit in 5,000 units: {outcomes:?}"
    );
}
