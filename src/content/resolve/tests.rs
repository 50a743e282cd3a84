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
            windows: false,
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
fn a_hard_link_names_a_file_of_its_own_layer_or_of_a_layer_below() {
    let keys = Keys::default();
    let memo = Memo::default();
    let program = program::from_config(br#"{"config":{"Entrypoint":["/app"]}}"#, false).unwrap();
    let expected = Expected::Elf(Elf {
        bits64: true,
        little: true,
        machine: 62,
    });
    let k = |p: &str| keys.prefixes(&components(p));
    let ask = |trees: &[Tree]| {
        let states = vec![State::Read; trees.len()];
        View {
            trees,
            states: &states,
            keys: &keys,
            memo: &memo,
            windows: false,
        }
        .evaluate(&program, expected)
    };
    let found = |trees: &[Tree]| match ask(trees) {
        Progress::Done(Finding::Judged { file, steps, .. }) => (file.path, file.layer, steps),
        other => panic!("{other:?}"),
    };
    // In its own layer, as a tar writer stores a second name of a file it has written.
    let mut top = Tree::default();
    top.add(&k("opt/x"), file(&elf(true, true, 62)));
    top.add(&k("app"), Node::Hardlink("opt/x".into()));
    let (path, layer, steps) = found(std::slice::from_ref(&top));
    assert_eq!((path.as_str(), layer), ("/opt/x", 0));
    assert_eq!(
        steps.last(),
        Some(&Step::Hardlink {
            from: "/app".into(),
            to: "/opt/x".into()
        })
    );
    // In a layer below: what the file system held when the link's layer was applied, even
    // when a layer above has since put something else at that path.
    let mut above = Tree::default();
    above.add(&k("opt/x"), file(b"#!/bin/sh\n"));
    let mut linking = Tree::default();
    linking.add(&k("app"), Node::Hardlink("/opt/x".into()));
    let mut below = Tree::default();
    below.add(&k("opt/x"), file(&elf(true, true, 62)));
    let (path, layer, _) = found(&[above, linking, below]);
    assert_eq!((path.as_str(), layer), ("/opt/x", 2));
    // Whited out in the link's own layer, or a link to itself: not found, and said so.
    let mut linking = Tree::default();
    linking.add(&k("app"), Node::Hardlink("opt/x".into()));
    linking.whiteout(&k("opt/x"));
    let mut below = Tree::default();
    below.add(&k("opt/x"), file(&elf(true, true, 62)));
    let Progress::Done(Finding::Missing { what, .. }) = ask(&[linking, below]) else {
        panic!("found a whited-out file")
    };
    assert_eq!(what, "/opt/x does not exist");
    // Named through a symbolic link among its directories (followed, as containerd follows it):
    // /usr/real → lib, so usr/real/x is usr/lib/x.
    let mut linking = Tree::default();
    linking.add(&k("app"), Node::Hardlink("usr/real/x".into()));
    let mut below = Tree::default();
    below.add(&k("usr/real"), Node::Symlink("lib".into()));
    below.add(&k("usr/lib/x"), file(&elf(true, true, 62)));
    let (path, layer, _) = found(&[linking, below]);
    assert_eq!((path.as_str(), layer), ("/usr/lib/x", 1));
    // A hard link to a symbolic link is that symbolic link at the link's own path: its relative
    // target is taken from the link's directory (/bin/app → x → /bin/x).
    let program =
        program::from_config(br#"{"config":{"Entrypoint":["/bin/app"]}}"#, false).unwrap();
    let mut top = Tree::default();
    top.add(&k("opt/sym"), Node::Symlink("x".into()));
    top.add(&k("bin/app"), Node::Hardlink("opt/sym".into()));
    top.add(&k("bin/x"), file(&elf(true, true, 62)));
    top.add(&k("opt/x"), file(&elf(true, true, 183)));
    let states = [State::Read];
    let view = View {
        trees: std::slice::from_ref(&top),
        states: &states,
        keys: &keys,
        memo: &memo,
        windows: false,
    };
    let Progress::Done(Finding::Judged {
        file, judgement, ..
    }) = view.evaluate(&program, expected)
    else {
        panic!("not found")
    };
    assert_eq!(
        (file.path.as_str(), judgement),
        ("/bin/x", Judgement::Matches)
    );
    let mut selfish = Tree::default();
    selfish.add(&k("app"), Node::Hardlink("app".into()));
    let Progress::Done(Finding::Missing { what, .. }) = ask(&[selfish]) else {
        panic!("a loop of hard links found a file")
    };
    assert_eq!(what, "/app is a hard link to itself");
    // Links that name each other in a ring: bounded.
    let mut ring = Tree::default();
    ring.add(&k("app"), Node::Hardlink("b".into()));
    ring.add(&k("b"), Node::Hardlink("c".into()));
    ring.add(&k("c"), Node::Hardlink("b".into()));
    let Progress::Done(Finding::Missing { what, .. }) = ask(&[ring]) else {
        panic!("a ring of hard links found a file")
    };
    assert!(
        what.ends_with("is reached through more than 1024 hard links (a ring), never a file"),
        "{what}"
    );
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
