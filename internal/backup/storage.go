package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Object is an archive in a Target.
type Object struct {
	// Name is the archive's name in the target (no directory or prefix).
	Name string
	URL  string
	Size int64
	Time time.Time
}

// Target is where archives are kept.
type Target interface {
	// Put stores an archive under name and returns its URL.
	Put(ctx context.Context, name string, r io.Reader, size int64) (string, error)
	// List is the archives whose names start with prefix, oldest first.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes an archive.
	Delete(ctx context.Context, name string) error
	// Check says whether the target can be written to: the directory can
	// be made, the bucket exists and the credentials are good.
	Check(ctx context.Context) error
}

// Dir is a directory on the management plane.
type Dir string

func (d Dir) Check(context.Context) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("backup directory %s: %w", d, err)
	}
	return nil
}

func (d Dir) Put(_ context.Context, name string, r io.Reader, _ int64) (string, error) {
	if err := d.Check(context.Background()); err != nil {
		return "", err
	}
	final := filepath.Join(string(d), name)
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	defer os.Remove(part)
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", final, err)
	}
	if err := os.Rename(part, final); err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: final}).String(), nil
}

func (d Dir) List(_ context.Context, prefix string) ([]Object, error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || strings.HasSuffix(e.Name(), ".part") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(string(d), e.Name())
		out = append(out, Object{Name: e.Name(), URL: (&url.URL{Scheme: "file", Path: p}).String(), Size: info.Size(), Time: info.ModTime()})
	}
	sortObjects(out)
	return out, nil
}

func (d Dir) Delete(_ context.Context, name string) error {
	err := os.Remove(filepath.Join(string(d), name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// S3 is a bucket of an S3-compatible store.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
}

// NewS3 connects to a bucket at endpoint (an http:// or https:// URL).
func NewS3(endpoint, region, bucket, prefix, accessKey, secretKey string) (*S3, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("endpoint %q is not an http:// or https:// URL", endpoint)
	}
	if region == "" {
		region = "us-east-1"
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Secure: u.Scheme == "https", Region: region})
	if err != nil {
		return nil, err
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: c, bucket: bucket, prefix: prefix}, nil
}

func (s *S3) url(key string) string { return "s3://" + s.bucket + "/" + key }

func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s3Error(s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("bucket %q does not exist; create it first", s.bucket)
	}
	return nil
}

func (s *S3) Put(ctx context.Context, name string, r io.Reader, size int64) (string, error) {
	key := s.prefix + name
	if _, err := s.client.PutObject(ctx, s.bucket, key, r, size, minio.PutObjectOptions{ContentType: "application/gzip"}); err != nil {
		return "", s3Error(s.bucket, err)
	}
	return s.url(key), nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix}) {
		if o.Err != nil {
			return nil, s3Error(s.bucket, o.Err)
		}
		out = append(out, Object{Name: path.Base(o.Key), URL: s.url(o.Key), Size: o.Size, Time: o.LastModified})
	}
	sortObjects(out)
	return out, nil
}

func (s *S3) Delete(ctx context.Context, name string) error {
	return s3Error(s.bucket, s.client.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}))
}

// Open reads an archive at an s3:// URL of this store.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s3Error(s.bucket, err)
	}
	if _, err := o.Stat(); err != nil {
		o.Close()
		return nil, s3Error(s.bucket, err)
	}
	return o, nil
}

// s3Error says what an S3 error means for the user.
func s3Error(bucket string, err error) error {
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
		return fmt.Errorf("the S3 store refused the credentials (%s); check the credentials Secret's %s and %s", minio.ToErrorResponse(err).Code, "aws_access_key_id", "aws_secret_access_key")
	case "NoSuchBucket":
		return fmt.Errorf("bucket %q does not exist; create it first", bucket)
	}
	return fmt.Errorf("S3: %w", err)
}

func sortObjects(o []Object) {
	sort.Slice(o, func(i, j int) bool {
		if !o[i].Time.Equal(o[j].Time) {
			return o[i].Time.Before(o[j].Time)
		}
		return o[i].Name < o[j].Name
	})
}
