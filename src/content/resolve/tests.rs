//! The resolver on its own: what it waits for while a layer is being read, and `env`'s
//! arguments.

use super::*;
use crate::content::machine::tests::elf;
use crate::content::machine::Elf;

fn file(bytes: &[u8]) -> Node {
    Node::File {
        mode: 0o755,
        head: machine::classify(bytes),
    }
}

#[test]
fn waits_for_the_path_it_needs_in_the_layer_being_read_and_then_answers() {
    let keys = Keys::default();
    let memo = Memo::default();
    let program =
        program::from_config(br#"{"config":{"Entrypoint":["/opt/app"]}}"#, false).unwrap();
    let expected = Expected::Elf(Elf {
        bits64: true,
        little: true,
        machine: 62,
    });
    let mut trees = vec![Tree::default(), Tree::default()];
    let mut states = vec![State::Reading, State::Unread];
    let ask = |trees: &[Tree], states: &[State]| {
        View {
            trees,
            states,
            keys: &keys,
            memo: &memo,
        }
        .evaluate(&program, expected)
    };
    let opt = Progress::Pending(Wait {
        key: keys.prefixes(&["opt"])[0],
        path: "/opt".into(),
    });
    assert_eq!(ask(&trees, &states), opt);
    trees[0].add(&keys.prefixes(&["etc", "x"]), Node::Other);
    assert_eq!(ask(&trees, &states), opt);
    // The top layer is read to its end without /opt: the answer lies below.
    states[0] = State::Read;
    assert_eq!(ask(&trees, &states), opt);
    states[1] = State::Reading;
    trees[1].add(&keys.prefixes(&["opt", "app"]), file(&elf(true, true, 62)));
    let Progress::Done(Finding::Judged {
        file, judgement, ..
    }) = ask(&trees, &states)
    else {
        panic!("not found")
    };
    assert_eq!((file.path.as_str(), file.layer), ("/opt/app", 1));
    assert_eq!(judgement, Judgement::Matches);
}

#[test]
fn env_runs_the_first_word_that_is_not_an_option_or_assignment() {
    for (args, program) in [
        (&["python3"][..], Some("python3")),
        (&["-S", "python3", "-u"], Some("python3")),
        (&["-Spython3"], Some("python3")),
        (&["-i", "A=1", "node"], Some("node")),
        (&["-u", "HOME", "bash"], Some("bash")),
        (&["-i"], None),
    ] {
        assert_eq!(env_program(args), program, "{args:?}");
    }
}
