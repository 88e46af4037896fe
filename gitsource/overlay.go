package gitsource

import (
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// overlay collects the objects of a chain of commits in memory, reading
// through to the repository's storage, so the chain reaches the disk as
// one packfile instead of a loose file per blob, tree and commit (five or
// more per status commit: a fleet's group commit wrote hundreds of small
// files per push).
type overlay struct {
	storer.EncodedObjectStorer
	objects map[plumbing.Hash]plumbing.EncodedObject
	order   []plumbing.Hash
}

func newOverlay(base storer.EncodedObjectStorer) *overlay {
	return &overlay{EncodedObjectStorer: base, objects: map[plumbing.Hash]plumbing.EncodedObject{}}
}

func (o *overlay) NewEncodedObject() plumbing.EncodedObject { return &plumbing.MemoryObject{} }

func (o *overlay) SetEncodedObject(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	h := obj.Hash()
	if _, ok := o.objects[h]; !ok {
		o.objects[h] = obj
		o.order = append(o.order, h)
	}
	return h, nil
}

func (o *overlay) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if obj, ok := o.objects[h]; ok && (t == plumbing.AnyObject || obj.Type() == t) {
		return obj, nil
	}
	return o.EncodedObjectStorer.EncodedObject(t, h)
}

func (o *overlay) HasEncodedObject(h plumbing.Hash) error {
	if _, ok := o.objects[h]; ok {
		return nil
	}
	return o.EncodedObjectStorer.HasEncodedObject(h)
}

func (o *overlay) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if obj, ok := o.objects[h]; ok {
		return obj.Size(), nil
	}
	return o.EncodedObjectStorer.EncodedObjectSize(h)
}

// packAbove is the number of objects from which a chain is written as a
// packfile: a fleet's group commit (dozens of commits) becomes one file,
// while the few objects of a single transition stay loose, so packfiles
// do not pile up in a long-running agent's cache.
const packAbove = 32

// flush writes the collected objects to the repository's storage: as one
// packfile when there are many and the storage takes packfiles, else one
// by one.
func (o *overlay) flush() error {
	if len(o.order) == 0 {
		return nil
	}
	pw, ok := o.EncodedObjectStorer.(storer.PackfileWriter)
	if !ok || len(o.order) < packAbove {
		for _, h := range o.order {
			if _, err := o.EncodedObjectStorer.SetEncodedObject(o.objects[h]); err != nil {
				return err
			}
		}
		return nil
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return err
	}
	// No delta search: the pack is written once and read back for a push
	// or two; the Git host repacks.
	if _, err := packfile.NewEncoder(w, o, false).Encode(o.order, 0); err != nil {
		w.Close()
		return fmt.Errorf("writing the commits' packfile: %w", err)
	}
	return w.Close()
}
